"""Notifications: ioc's alerts pushed to Prometheus Alertmanager, which groups, routes, repeats and
delivers them (email, webhooks, chat). ``alertmanager`` turns alerts into Alertmanager's v2 alerts and
silences (pure); ``client`` speaks its HTTP API; ``runner`` is ``ioc notify``, the loop between them.
"""
