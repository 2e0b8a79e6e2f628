"""The canonical model: what every CRM, PSA and ERP payload is normalised into."""
