"""The HTTP API: the live operating picture, served from Redis by a stateless process."""

from ioc.api.app import create_app

__all__ = ["create_app"]
