"""Shared kit: errors, identifiers, money, pagination, time, crypto."""
