"""Exports of what customers are billed: FOCUS 1.2 CSV."""
