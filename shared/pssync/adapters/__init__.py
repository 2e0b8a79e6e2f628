"""Adapters: the only modules that do I/O (AWS SDK, HTTP)."""
