"""Audit trail of every state-changing call."""
