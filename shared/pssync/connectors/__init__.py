"""Outbound connectors: the one vendor HTTP client, and the PSA/ERP targets (shadow today)."""
