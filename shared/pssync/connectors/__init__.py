"""Outbound connectors to PSA and ERP systems, behind one command interface."""
