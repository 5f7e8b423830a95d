"""The feed filters' docs are the registry's: every registered feed, and the API's own answer to another."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ioc.api import create_app
from ioc.feeds import FEEDS
from ioc.settings import Settings


def test_the_alerts_feed_filter_documents_the_answer_it_gives_to_an_unknown_feed():
    app = create_app(Settings(_env_file=None, api_keys="operator:op-1"))
    operation = app.openapi()["paths"]["/v1/alerts"]["get"]
    example = operation["responses"]["422"]["content"]["application/json"]["example"]
    (documented,) = example["errors"]
    answer = TestClient(app).get("/v1/alerts?feed=noise", headers={"X-API-Key": "op-1"})
    assert answer.status_code == 422
    assert answer.json()["errors"] == [documented] and answer.json()["detail"] == example["detail"]
    assert all(f"'{name}'" in documented["reason"] for name in FEEDS)
    (feed_filter,) = [p for p in operation["parameters"] if p["name"] == "feed"]
    assert feed_filter["description"] == ", ".join(FEEDS) + "."
