"""The reporting service: periods, summaries and the committee report."""
