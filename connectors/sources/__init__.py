"""Sources: things that produce feed events into Kafka (simulator; later replay and the MQTT bridge)."""
