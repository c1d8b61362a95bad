"""Credit control: limits, prepaid balances, thresholds that act before the bill surprises."""
