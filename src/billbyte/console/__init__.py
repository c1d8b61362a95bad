"""The MSP console: pages for the MSP's staff (admin, billing, read-only help desk)."""
