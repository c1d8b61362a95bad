"""What every feature needs to know about the caller: the authenticated subject (an API key
resolved to its MSP and role), the roles, and the FastAPI dependency that authenticates a
request."""
