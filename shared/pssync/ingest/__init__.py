"""Inbound webhooks: authenticate, validate, normalise to canonical events, dedupe, publish."""
