"""Connectors: sources that bring events into Kafka and sinks that carry results out of it."""
