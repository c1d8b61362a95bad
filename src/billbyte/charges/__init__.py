"""Open charges of the current invoice, the change feed, and the margin report."""
