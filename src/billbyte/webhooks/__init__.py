"""Webhooks: endpoints registered by MSPs, an outbox of events, signed deliveries with retries."""
