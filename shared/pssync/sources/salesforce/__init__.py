"""Salesforce: outbound messages (SOAP), Event Relay (Platform Events and CDC), and the Opportunity record."""
