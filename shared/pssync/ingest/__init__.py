"""The ingest use cases: a verified, normalised delivery becomes canonical events, each exactly once."""
