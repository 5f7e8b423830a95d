"""Sinks: carry pipeline results out of Kafka (the Redis live picture; later webhooks)."""
