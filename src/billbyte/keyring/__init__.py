"""The key ring: re-encrypting every stored secret when the secret key rotates."""
