"""Tenancy: the platform hosts MSPs; each MSP has users and API keys with roles."""
