"""Vendor file readers (one module per format)."""
