"""What happened after each decision: outcomes per symbol-day and the scorecard over them."""
