"""The few calls of Alertmanager's v2 HTTP API the notifier makes. Any transport error or non-2xx answer
is an ``AlertmanagerError``; the runner retries."""

from __future__ import annotations

from typing import Any

import httpx

from ioc.settings import mask_password

TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class AlertmanagerError(RuntimeError):
    """Alertmanager did not answer, or refused the request; the message says which and why."""


class Alertmanager:
    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url.rstrip("/")
        self.client = client

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            url = f"{self.url}/api/v2{path}"
            response = await self.client.request(method, url, timeout=TIMEOUT, **kwargs)
        except httpx.HTTPError as error:
            # The URL may carry basic-auth credentials: the message (logged) shows them masked.
            raise AlertmanagerError(mask_password(f"{self.url}: {type(error).__name__}: {error}")) from None
        if response.status_code >= 300:
            raise AlertmanagerError(
                mask_password(f"{self.url}{path}: {response.status_code} {response.text[:300]}")
            )
        return response.json() if response.content else None

    async def uptime(self) -> str:
        """When this Alertmanager process started: a new value means a restart, and it forgot its alerts."""
        return str((await self._call("GET", "/status"))["uptime"])

    async def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        if alerts:
            await self._call("POST", "/alerts", json=alerts)

    async def alerts(self, source: str) -> list[dict[str, Any]]:
        """Every alert it holds with ``source=<source>``, silenced and inhibited ones too."""
        params = {"filter": f'source="{source}"', "silenced": "true", "inhibited": "true", "active": "true"}
        return await self._call("GET", "/alerts", params=params)

    async def silences(self) -> list[dict[str, Any]]:
        return await self._call("GET", "/silences")

    async def post_silence(self, silence: dict[str, Any]) -> str:
        return str((await self._call("POST", "/silences", json=silence))["silenceID"])

    async def delete_silence(self, silence_id: str) -> None:
        await self._call("DELETE", f"/silence/{silence_id}")
