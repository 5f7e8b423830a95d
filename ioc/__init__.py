"""ioc: the event-stream backend of a city's Intelligent Operations Centre."""

__version__ = "0.1.0"
