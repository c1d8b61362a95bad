"""Catalogue of fixed-price offers and customers' seat-based licence subscriptions."""
