"""The operators' console in a real browser: Debian's Chromium, headless, driven by Playwright, against a
real broker, Redis, worker and API process.

An hour of simulated air and water readings fills the picture and a traffic jam is open before the page
loads. The operator signs in with a key (a wrong one is refused with the API's sentence), sees the open
jam, then a new critical alert raised by the real worker from an anomaly in the broker appears in the page
without a reload, above an older critical jam and both above the newer warning (critical first); the
filters by severity, feed and district narrow the list; the operator acknowledges it there and the API
shows it acknowledged by that key. A crowd counter's reading pushed through the ingest route while the
page is open shows in the crowd tile (the zone, the people now, the share of its safe capacity and its
band) and on the map's crowd layer, which the legend hides and shows again; the tiles and layers come from
the feed registry (``/console/feeds.json``). Switched to English, the page shows the alert's English
title. The key never goes into a URL (the stream is read with fetch and the X-API-Key header), so it is
nowhere in the API's log, access log included; the page runs under a Content-Security-Policy that allows
no inline script or style. No JavaScript error on the way; a full-page screenshot is kept in
``test-artifacts/console.png`` (and ``console-vi.png``, before the switch; ``console-crowd.png`` as the
crowd reading arrives, and ``console-crowd-map.png``, the map in English).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, expect, sync_playwright

from connectors.kafka import EventProducer, create_topics
from ioc.api.auth import identify
from ioc.feeds import FEEDS
from ioc.infra.process import ensure_debian_package
from ioc.models.anomaly import Anomaly, RuleKind, Severity, alert_id
from ioc.settings import parse_api_keys
from tests.conftest import TEST_KEYS, settings_env
from tests.e2e.test_alerts_api import HANOI
from tests.e2e.test_stream_sse import api_process
from tests.processes import IocProcess, wait_for

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def now() -> datetime:
    return datetime.now(HANOI).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (Playwright's own browser download is not used: it fails here).

    Module scope, not session: Playwright's sync API runs an event loop on the main thread while it is
    open, and every later test's ``asyncio.run`` would fail on it."""
    chromium = ensure_debian_package("chromium", "chromium", "run the browser tests on a machine that has it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def jam(which: tuple[str, str, Severity, datetime]) -> Anomaly:
    entity, district, severity, start = which
    return Anomaly(
        rule="traffic.incident",
        rule_version="test",
        kind=RuleKind.statistical,
        feed="traffic",
        entity=entity,
        district=district,
        firing=True,
        episode_start=start,
        observed_at=start + timedelta(minutes=5),
        window="5m",
        metric="speed_score",
        value=0.97 if severity == Severity.critical else 0.8,
        unit="1",
        threshold=0.7,
        severity=severity,
    )


def ident(which: tuple[str, str, Severity, datetime]) -> str:
    return alert_id("traffic.incident", which[0], which[3])


def produce(settings, *anomalies: Anomaly) -> None:
    """Into the anomalies topic, from a thread of its own: Playwright's sync API holds this one's loop."""

    async def send() -> None:
        async with EventProducer(settings) as producer:
            await producer.send_many((settings.anomalies_topic, a.entity, a.to_json()) for a in anomalies)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, send()).result()


def simulate_last_hour(settings, until: datetime) -> None:
    start = (until - timedelta(minutes=60)).isoformat()
    done = subprocess.run(
        [sys.executable, "-m", "ioc", "simulate", "--speed", "max", "--start", start, "--duration", "3540",
         "--interval", "300", "--seed", "7", "--feeds", "air,water"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_an_operator_sees_a_live_alert_and_acknowledges_it_in_the_console(settings, tmp_path, browser):
    # Times from the test's start, not the module's import: a whole-suite run imports it long before.
    start = now()
    open_jam = ("traffic-nga-tu-so", "dong-da", Severity.warning, start - timedelta(minutes=40))
    live_jam = ("traffic-nga-tu-vong", "hai-ba-trung", Severity.critical, start - timedelta(minutes=20))
    # Critical but older than the open warning: newest first put it below; critical first puts it above.
    old_critical = ("traffic-cau-giay", "cau-giay", Severity.critical, start - timedelta(minutes=60))
    create_topics(settings)
    worker = IocProcess(["worker"], settings, tmp_path / "worker.log")
    # A long wait keeps a busy machine from turning the acknowledgement's 200 into a 202.
    api, http = api_process(settings, tmp_path, command_wait_seconds=20)
    processes = [worker, api]
    base = str(http.base_url).rstrip("/")
    context = None
    try:
        simulate_last_hour(settings, start)
        produce(settings, jam(open_jam), jam(old_critical))

        def sensors(feed: str) -> list[dict]:
            return http.get("/v1/picture").json()["feeds"][feed]["sensors"]

        wait_for(lambda: http.get(f"/v1/alerts/{ident(open_jam)}").status_code == 200, timeout=120,
                 processes=processes)  # fmt: skip
        wait_for(lambda: len(sensors("air")) >= 10 and len(sensors("water")) >= 20, timeout=120,
                 processes=processes)  # fmt: skip

        # The page itself needs no key; the API's answer to a wrong key is shown as it is.
        page_html = http.get("/", headers={})
        assert page_html.status_code == 200 and "console.js" in page_html.text
        assert "/" not in http.get("/openapi.json").json()["paths"]
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        stranger = context.new_page()
        stranger.goto(f"{base}/")
        stranger.fill("#key-input", "not-a-key")
        stranger.click("#key-submit")
        expect(stranger.locator("#key-error")).to_have_text("The API key is not one of IOC_API_KEYS.")
        stranger.close()

        page = context.new_page()
        errors: list[str] = []

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(f"console: {message.text} ({message.location.get('url')})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
        requests: list[tuple[str, dict[str, str]]] = []
        page.on("request", lambda request: requests.append((request.url, request.headers)))
        page.goto(f"{base}/")
        expect(page.locator("html")).to_have_attribute("lang", "vi")  # Vietnamese by default
        page.fill("#key-input", TEST_KEYS["operator"])
        page.click("#key-submit")

        # The snapshot: the open jam, live, and the picture's tiles.
        old = page.locator(f'[data-alert-id="{ident(open_jam)}"]')
        expect(old).to_be_visible(timeout=30_000)
        expect(old).to_have_attribute("data-status", "open")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=30_000)
        expect(page.locator('[data-testid="tile-water"] .fresh')).not_to_have_attribute("data-age", "none")
        assert page.locator("#map .sensor").count() >= 30  # air and water sensors on the map
        assert page.locator("#map .district").count() >= 10
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        # A tile and a map layer per registered feed, in the registry's order.
        tiles = page.locator("#tiles .tile").evaluate_all("tiles => tiles.map(t => t.dataset.feed)")
        assert tiles == list(FEEDS)
        assert page.locator("#map .layer").evaluate_all("gs => gs.map(g => g.dataset.layer)") == list(FEEDS)

        # A crowd counter's reading, pushed while the page is open: 8,500 people in Văn Miếu, whose safe
        # capacity is 10,000 (the registry's), is 85 %, in the band "crowded" (80–100 %).
        zone, reading_at = "crowd-van-mieu", datetime.now(HANOI) - timedelta(minutes=1)
        pushed = http.post(
            "/v1/ingest/crowd",
            headers={"X-API-Key": TEST_KEYS["integrator"]},
            json=[{"sensorId": zone, "dateObserved": reading_at.isoformat(), "peopleCount": 8500,
                   "occupancy": 0.9, "averageCrowdSpeed": 2.1, "direction": "inbound"}],
        )  # fmt: skip
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["accepted"] == 1
        crowd_tile = page.locator('[data-testid="tile-crowd"]')
        expect(crowd_tile.locator(".tile-number")).to_have_text("85", timeout=90_000)
        expect(crowd_tile.locator(".tile-name")).to_have_text("Đám đông")
        expect(crowd_tile.locator(".band")).to_have_text("Rất đông")
        expect(crowd_tile.locator(".band")).to_have_attribute("data-band", "crowded")
        expect(crowd_tile.locator(".tile-unit")).to_have_text("% sức chứa")
        expect(crowd_tile.locator(".tile-where")).to_have_text("Văn Miếu – Quốc Tử Giám · Đống Đa")
        expect(crowd_tile.locator(".tile-tally")).to_have_attribute("data-total", "8500")
        expect(crowd_tile.locator(".tile-tally")).to_have_text("Khu: 1 · 8.500 người")
        layer = page.locator('#map [data-layer="crowd"]')
        marker = layer.locator(f'.sensor[data-sensor="{zone}"]')
        expect(marker).to_have_attribute("data-band", "crowded")
        expect(marker).to_have_attribute("fill", "#ff7e00")
        expect(layer.locator(f'.sensor-value[data-sensor="{zone}"]')).to_have_text("85%")
        assert "Lấp đầy 85% sức chứa · Rất đông" in marker.locator("title").text_content()
        # The legend hides the layer and shows it again.
        toggle = page.locator('#legend .layer-toggle[data-layer="crowd"]')
        toggle.click()
        expect(toggle).to_have_attribute("aria-pressed", "false")
        expect(marker).to_be_hidden()
        toggle.click()
        expect(marker).to_be_visible()
        assert page.evaluate("window.__sameDocument") is True
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "console-crowd.png", full_page=True)

        # A new critical jam, raised by the worker from the broker, arrives on its own — newest first.
        produce(settings, jam(live_jam))
        row = page.locator(f'[data-alert-id="{ident(live_jam)}"]')
        expect(row).to_be_visible(timeout=90_000)
        assert page.evaluate("window.__sameDocument") is True
        # Critical first, then the newest episode: the live critical jam, the critical jam of an hour ago,
        # then the warning of 40 minutes ago (the simulated hour's own alerts, which depend on the time of
        # day, may fall anywhere around them).
        order = page.locator("[data-alert-id]").evaluate_all("rows => rows.map(r => r.dataset.alertId)")
        assert order.index(ident(live_jam)) < order.index(ident(old_critical)) < order.index(ident(open_jam))
        expect(row).to_have_attribute("data-severity", "critical")
        alert = http.get(f"/v1/alerts/{ident(live_jam)}").json()
        expect(row.locator(".alert-title")).to_have_text(alert["title"]["vi"])
        expect(page.locator('[data-district="hai-ba-trung"] .district-ring')).to_have_attribute(
            "data-severity", "critical"
        )

        # The operator acknowledges it in the page; the API shows it acknowledged by the operator's key.
        row.locator(".note").fill("Đã báo CSGT / traffic police informed")
        row.locator('[data-action="ack"]').click()
        expect(row).to_have_attribute("data-status", "acknowledged", timeout=30_000)
        expect(row.locator(".outcome")).to_have_attribute("data-kind", "done")
        acknowledged = http.get(f"/v1/alerts/{ident(live_jam)}").json()
        assert acknowledged["status"] == "acknowledged"
        # By the key's name in this test's settings (an unnamed role:key is known by a name derived from it).
        operator = identify(TEST_KEYS["operator"], parse_api_keys(settings.api_keys.get_secret_value()))
        assert operator is not None and acknowledged["acknowledgedBy"] == operator.name
        assert acknowledged["acknowledgedNote"] == "Đã báo CSGT / traffic police informed"
        expect(row.locator('[data-action="ack"]')).to_be_hidden()
        expect(row.locator('[data-action="resolve"]')).to_be_visible()

        # Filters by severity, feed and district narrow the list; "every" brings it all back.
        jams = {name: page.locator(f'[data-alert-id="{ident(j)}"]') for name, j in
                {"live": live_jam, "old": old_critical, "open": open_jam}.items()}  # fmt: skip
        page.select_option("#filter-severity", "warning")
        expect(jams["open"]).to_be_visible()
        expect(jams["live"]).to_have_count(0)
        expect(jams["old"]).to_have_count(0)
        assert set(
            page.locator("[data-alert-id]").evaluate_all("rows => rows.map(r => r.dataset.severity)")
        ) == {"warning"}
        page.select_option("#filter-severity", "")
        page.select_option("#filter-feed", "air")
        for locator in jams.values():
            expect(locator).to_have_count(0)
        page.select_option("#filter-feed", "traffic")
        for locator in jams.values():
            expect(locator).to_be_visible()
        page.select_option("#filter-district", "dong-da")
        expect(jams["open"]).to_be_visible()
        expect(jams["live"]).to_have_count(0)
        expect(jams["old"]).to_have_count(0)
        page.select_option("#filter-district", "")
        page.select_option("#filter-feed", "")
        expect(row).to_be_visible()

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "console-vi.png", full_page=True)

        # In English: the alert's English title, the UI's strings too.
        page.click("#lang-en")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(row.locator(".alert-title")).to_have_text(alert["title"]["en"])
        expect(row.locator(".status")).to_have_text("Acknowledged")
        expect(page.locator("#connection")).to_have_text("Live")

        page.screenshot(path=ARTIFACTS / "console.png", full_page=True)
        expect(crowd_tile.locator(".band")).to_have_text("Crowded")
        expect(crowd_tile.locator(".tile-tally")).to_have_text("Zones: 1 · 8,500 people")
        expect(crowd_tile.locator(".tile-metric")).to_have_text("Busiest zone, % of safe capacity")
        page.locator("#map").screenshot(path=ARTIFACTS / "console-crowd-map.png")
        assert page.evaluate("window.__sameDocument") is True
        assert errors == []
        # The stream was read with the key in a header; no URL the page asked for holds it.
        streams = [headers for url, headers in requests if url.startswith(f"{base}/v1/stream")]
        assert streams and all(h.get("x-api-key") == TEST_KEYS["operator"] for h in streams)
        assert not [url for url, _ in requests if TEST_KEYS["operator"] in url]
        # The page's Content-Security-Policy is in force (and the page above ran under it without a
        # violation, each of which the browser reports as a console error): an injected script does not run.
        injected = "const s = document.createElement('script'); s.textContent = 'window.__x = 1';"
        assert page.evaluate(f"() => {{ {injected} document.head.append(s); return window.__x; }}") is None
    finally:
        if context is not None:
            context.close()
        http.close()
        api.stop()
        worker.stop()
    assert TEST_KEYS["operator"] not in api.log_file.read_text()


def test_unregistered_sensors_are_counted_and_listed_apart_never_on_the_map(settings, tmp_path, browser):
    """Two registry air stations reporting, one of 2016, and two `unregistered:` sensors (one live, one of
    2016) in Redis: the air tile reads "2/12 sensors reporting · 1/2 unregistered", the map holds the
    three registry stations and nothing at 0,0, and the unregistered ones have a list of their own whose
    row opens the sensor's page."""
    from connectors.sinks.redis_picture import RedisPicture, connect
    from tests.integration.test_picture_sensors import OLD, aggregate, index

    recent = now() - timedelta(minutes=1)

    async def write() -> None:
        redis = connect(settings)
        try:
            await RedisPicture(settings, redis).write_aggregates(
                [
                    aggregate(
                        "air", "air-kim-lien", "1m", "pm25", 30, at=recent, vnAqi=index(62, "trung_binh")
                    ),
                    aggregate("air", "air-us-embassy", "1m", "pm25", 90, at=recent, vnAqi=index(163, "xau")),
                    aggregate("air", "air-hoan-kiem", "1m", "pm25", 20, at=OLD, vnAqi=index(40, "tot")),
                    aggregate(
                        "air",
                        "unregistered:lowcost-42",
                        "1m",
                        "pm25",
                        40,
                        at=recent,
                        vnAqi=index(90, "trung_binh"),
                    ),  # fmt: skip
                    aggregate("air", "unregistered:lowcost-42", "1h", "pm25", 38, at=recent),
                    aggregate("air", "unregistered:backfill-2016", "1m", "pm25", 20, at=OLD),
                ]
            )
        finally:
            await redis.aclose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, write()).result()
    api, http = api_process(settings, tmp_path)
    base = str(http.base_url).rstrip("/")
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
        page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
        page.goto(f"{base}/")
        page.fill("#key-input", TEST_KEYS["operator"])
        page.click("#key-submit")
        page.click("#lang-en")

        fresh = page.locator('[data-testid="tile-air"] .fresh')
        expect(fresh).to_contain_text("2/12 sensors reporting · 1/2 unregistered", timeout=30_000)
        rows = page.locator('[data-testid="unregistered"] [data-sensor-id]')
        expect(rows).to_have_count(2)
        assert rows.evaluate_all("rows => rows.map(r => r.dataset.sensorId)") == [
            "unregistered:backfill-2016",
            "unregistered:lowcost-42",
        ]
        expect(page.locator("#unregistered-empty")).to_be_hidden()
        # The map: the three registry stations with a picture window (and the rest of the registry from
        # GET /v1/sensors), none of the unregistered ones, nothing at a 0,0 stand-in.
        on_map = page.locator("#map .sensor").evaluate_all("nodes => nodes.map(n => n.dataset.sensor || '')")
        assert on_map and not any(ident.startswith("unregistered:") for ident in on_map), on_map
        assert page.locator('#map [data-sensor^="unregistered:"]').count() == 0

        # Its own page: the row opens GET /v1/sensors/unregistered:lowcost-42's windows.
        live = page.locator('[data-sensor-id="unregistered:lowcost-42"]')
        live.locator(".sensor-open").click()
        expect(live.locator('.sensor-page [data-window="1m"]')).to_contain_text("pm25 40")
        expect(live.locator('.sensor-page [data-window="1h"]')).to_be_visible()
        assert errors == []
    finally:
        context.close()
        http.close()
        api.stop()
