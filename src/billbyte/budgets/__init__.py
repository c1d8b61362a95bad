"""Budgets: a customer's monthly spending budgets with alert thresholds, evaluated after rating."""
