"""AWS implementations of the ports (DynamoDB, EventBridge, S3, Secrets Manager, Step Functions)."""
