"""Schemathesis hooks for ``tests/integration/test_api_schemathesis.py`` (loaded by its CLI run).

The ingest endpoints also take ``application/x-ndjson``, which Schemathesis has no serializer for. Its
schema is the text itself (one JSON event per line), so a string goes as it is; any other value (the
negative cases: an array, a number …) goes as its JSON on one line, as a client that got the format
wrong would send it — not as an empty body, which is a valid, empty batch.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(_: Any, value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    return (json.dumps(value) + "\n").encode()
