"""Vendor stand-ins: local HTTP servers that behave like vendor APIs, for tests and the local runtime."""
