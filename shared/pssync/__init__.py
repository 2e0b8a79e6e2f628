"""pssync: governed CRM / PSA / ERP / revenue-recognition orchestration for professional services."""

__version__ = "0.1.0"
