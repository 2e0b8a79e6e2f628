"""Workflow steps: one function per Step Functions task, pure apart from the ports they are given."""
