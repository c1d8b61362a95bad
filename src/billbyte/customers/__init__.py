"""Customers of an MSP and the vendor accounts that map usage to them."""
