"""The city over time: the worker's outputs kept in PostgreSQL (``store``), written by ``ioc history``
(``sink``) and read by ``GET /v1/history``."""
