"""Partner accounts: the MSP's own account with each cloud vendor."""
