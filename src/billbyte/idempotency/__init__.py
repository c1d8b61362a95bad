"""``Idempotency-Key`` on every POST: the same API key re-sending the same key and body gets
the first successful response again."""
