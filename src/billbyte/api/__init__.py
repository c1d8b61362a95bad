"""HTTP layer: app factory, dependencies, the one error mapping, idempotency."""
