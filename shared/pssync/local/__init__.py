"""The embedded local runtime: the synthesized CDK template brought to life on an in-process moto server."""
