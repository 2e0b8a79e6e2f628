"""The handler stack every Lambda function uses, and the shapes of what handlers receive and answer."""
