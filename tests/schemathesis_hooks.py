"""Schemathesis hooks for ``tests/integration/test_api_schemathesis.py`` (loaded by its CLI run).

The ingest endpoints also take ``application/x-ndjson`` (one JSON value per line), which Schemathesis
has no serializer for: a generated array goes one item per line, anything else as one line.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(_: Any, value: Any) -> bytes:
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()
