"""What the console knows of the feeds comes from the registry (``/console/feeds.json``): every feed has a
view it can draw, in both languages, in canonical order, served like the console's other files."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from ioc.api.console import SECURITY_HEADERS, mount
from ioc.feeds import FEEDS, REGISTRY

MARKERS = {"circle", "diamond", "square", "triangle", "hexagon"}  # those console.js draws


def test_every_feed_has_a_console_view_the_console_can_draw():
    for feed in REGISTRY.values():
        view = feed.console
        assert view is not None, feed.name
        assert view.marker in MARKERS and view.headline in ("value", "band"), feed.name
        assert all(text for text in (*view.name, *view.metric, *view.index_name)), feed.name
    markers = [feed.console.marker for feed in REGISTRY.values() if feed.console]
    assert len(set(markers)) == len(markers)  # each layer is told apart on the map


def test_feeds_json_lists_the_registry_with_the_crowd_tile_and_layer():
    app = FastAPI()
    mount(app)
    with TestClient(app) as client:
        response = client.get("/console/feeds.json")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    feeds = response.json()["feeds"]
    assert [f["name"] for f in feeds] == list(FEEDS)
    crowd = next(f for f in feeds if f["name"] == "crowd")
    assert crowd["label"] == {"vi": "Đám đông", "en": "Crowds"}
    assert crowd["index"]["name"] == "occupancyShare" and crowd["index"]["worst"] == "high"
    assert [b["key"] for b in crowd["index"]["bands"]] == ["comfortable", "busy", "crowded", "over_capacity"]
    assert crowd["tally"] == {
        "field": "people_count",
        "unit": {"vi": "người", "en": "people"},
        "sensors": {"vi": "Khu", "en": "Zones"},
    }
    assert crowd["marker"] == "hexagon" and crowd["valueOnMap"] == "%"
    traffic = next(f for f in feeds if f["name"] == "traffic")
    assert traffic["headline"] == "band" and traffic["index"]["worst"] == "low"
