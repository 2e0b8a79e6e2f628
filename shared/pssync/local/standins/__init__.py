"""Vendor stand-ins: small HTTP servers on 127.0.0.1 behaving like vendor APIs (test equipment only)."""
