"""The reliability scorecard (issue 12): figures a finance team can trust, each with its seed and N."""
