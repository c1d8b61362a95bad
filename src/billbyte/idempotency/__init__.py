"""``Idempotency-Key`` on every POST: same key + same body replays the first response."""
