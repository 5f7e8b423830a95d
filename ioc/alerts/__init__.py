"""Alerting, one module per stage as in Prometheus Alertmanager: rules (data), the alert manager
(dedup, lifecycle), inhibition, silences, incidents, and the bilingual messages."""
