"""The city over time in the console, in Debian's Chromium (headless, Playwright) against a real API process
and PostgreSQL: a sensor clicked on the map shows its last 24 hours and 7 days over its standard's bands
(drawn by the vendored uPlot under the console's Content-Security-Policy), the KPI tiles of each area
with sparklines open on demand, and the KPI page of a month (crowds' daily visitors and hours over 80 %
of the safe capacity included), in Vietnamese and English, with no script error or CSP violation.
Screenshots are kept in ``test-artifacts/``: ``history-sensor-vi.png``, ``history-sensor-en.png``,
``kpis-month-vi.png``, ``kpis-month-en.png``.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from ioc.history.store import HistoryStore, WindowRow, rider_of_day, upgrade
from tests.conftest import TEST_KEYS
from tests.e2e.test_console_browser import ARTIFACTS, browser  # noqa: F401  (the module's browser fixture)
from tests.e2e.test_stream_sse import api_process

pytestmark = pytest.mark.e2e

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
SENSOR = "air-hoan-kiem"
BUS_STOP = "bus-bo-ho"  # Hoàn Kiếm, route 09
DAY_WINDOWS = 287  # 5-minute windows from 23 h 55 min ago
ZONE = "crowd-van-mieu"  # safe capacity 10,000 (the registry's)
# Its first hour of today: 7 of 12 counts at or over 80 % of the safe capacity, 9,000 at the most.
ZONE_PEOPLE = [8000] * 6 + [9000] + [5000] * 5


def local_midnight(now: datetime) -> datetime:
    return now.astimezone(HANOI).replace(hour=0, minute=0, second=0, microsecond=0)


def window(sensor_id: str, length: str, start: datetime, pm25: float, readings: int) -> WindowRow:
    text = json.dumps({"sensorId": sensor_id, "windowStart": start.isoformat()})
    return WindowRow("air", length, sensor_id, start, readings, start, {"pm25": round(pm25, 1)}, text)


def seed(url: str, now: datetime) -> None:
    """A day of 5-minute PM2.5 at Hoàn Kiếm swinging across VN_AQI's bands, 14 days of hourly means at
    both of the area's stations, a bus stop's boardings, a crowd zone's first hour of today and one
    resolved alert."""
    upgrade(url)
    rows = []
    day_start = now - timedelta(hours=24) + timedelta(minutes=5)  # inside the page's own "last 24 hours"
    for n in range(DAY_WINDOWS):
        start = day_start + timedelta(minutes=5 * n)
        rows.append(window(SENSOR, "5m", start, 40 + 30 * math.sin(n / 20), 5))
    first_hour = (now - timedelta(days=14)).replace(minute=0, second=0, microsecond=0)
    for n in range(14 * 24):
        start = first_hour + timedelta(hours=n)
        for station, level in ((SENSOR, 45.0), ("air-hang-dau", 30.0)):
            rows.append(window(station, "1h", start, level + 20 * math.sin(n / 9), 60))
    for n, people in enumerate(ZONE_PEOPLE):
        start = local_midnight(now) + timedelta(minutes=5 * n)
        rows.append(WindowRow("crowd", "5m", ZONE, start, 1, start, {"people_count": people}, "{}"))
    taps = []
    for day in range(14):
        morning = (
            (now - timedelta(days=day)).astimezone(HANOI).replace(hour=7, minute=0, second=0, microsecond=0)
        )
        for n in range(40 + 5 * day):
            at = morning + timedelta(minutes=n)
            rider = rider_of_day(uuid.uuid4().hex * 2, at.date().isoformat())
            taps.append((BUS_STOP, str(uuid.uuid4()), at, "bus", "09", "BOARD", rider))
    store = HistoryStore(url, "Asia/Ho_Chi_Minh")
    try:
        store.write(rows, [], [], [t for t in taps if t[2] <= now])
    finally:
        store.close()


def watch(page: Page, errors: list[str]) -> None:
    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))


def painted(page: Page, selector: str, rgb: tuple[int, int, int]) -> int:
    """Pixels of the chart's canvas close to ``rgb`` (a band's colour, drawn translucent)."""
    return page.locator(f"{selector} canvas").first.evaluate(
        """(canvas, rgb) => {
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (data[i + 3] > 0 && Math.abs(data[i] - rgb[0]) < 8 && Math.abs(data[i + 1] - rgb[1]) < 8
                    && Math.abs(data[i + 2] - rgb[2]) < 8) n += 1;
            }
            return n;
        }""",
        list(rgb),
    )


def test_a_sensors_week_area_kpis_and_a_months_kpi_page_in_the_browser(database, tmp_path, browser):  # noqa: F811
    settings = database
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    seed(settings.database_address, now)
    api, http = api_process(settings, tmp_path)
    base = str(http.base_url).rstrip("/")
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    errors: list[str] = []
    try:
        # The vendored library is served by the API, with its licence beside it.
        assert http.get("/console/vendor/uPlot.esm.js").status_code == 200
        assert "MIT License" in http.get("/console/vendor/uPlot.LICENSE").text
        page = context.new_page()
        watch(page, errors)
        page.goto(f"{base}/")
        page.fill("#key-input", TEST_KEYS["operator"])
        page.click("#key-submit")
        sensor = page.locator(f'#map [data-sensor="{SENSOR}"]')
        expect(sensor).to_be_visible(timeout=30_000)

        # The sensor's 24 hours (5-minute windows) and 7 days (hourly), over VN_AQI's PM2.5 bands.
        sensor.dispatch_event("click")  # shapes overlap on the map: this one's, whatever is drawn on top
        panel = page.locator('[data-testid="history-panel"]')
        expect(panel).to_be_visible()
        expect(panel).to_have_attribute("data-sensor", SENSOR)
        day, week = panel.locator('[data-testid="chart-day"]'), panel.locator('[data-testid="chart-week"]')
        expect(day).to_have_attribute("data-points", str(DAY_WINDOWS), timeout=30_000)
        # The hourly windows of the last 7 days: 168, or 167 when the page asks within the minute the
        # current hour's window would start.
        assert week.get_attribute("data-points") in ("167", "168")
        expect(day.locator("canvas")).to_have_count(1)
        expect(day.locator("figcaption")).to_have_text("24 giờ qua")
        # The bands are painted behind the line: the good band's green and the poor band's orange, blended.
        assert painted(page, '[data-testid="chart-day"]', (0, 228, 0)) > 500
        assert painted(page, '[data-testid="chart-day"]', (255, 126, 0)) > 500
        expect(panel.locator(".band-legend")).to_contain_text("Tốt 0–25")

        # A crowd zone's people over its occupancy bands, in people from its safe capacity (10,000).
        page.locator(f'#map [data-sensor="{ZONE}"]').first.dispatch_event("click")
        expect(panel).to_have_attribute("data-sensor", ZONE)
        expect(panel.locator("h2")).to_contain_text("Số người trong khu")
        expect(panel.locator(".band-legend")).to_contain_text("Rất đông 8.000–10.000")
        expect(day.locator("canvas")).to_have_count(1)
        # Its counts of the last 24 hours: those of today's first hour already begun.
        counted = sum(local_midnight(now) + timedelta(minutes=5 * n) <= now for n in range(len(ZONE_PEOPLE)))
        expect(day).to_have_attribute("data-points", str(counted), timeout=30_000)
        sensor.dispatch_event("click")  # back to the air station for the screenshots
        expect(panel).to_have_attribute("data-sensor", SENSOR)
        expect(day).to_have_attribute("data-points", str(DAY_WINDOWS), timeout=30_000)

        # The area tiles with their sparklines, on demand.
        page.click('[data-testid="area-kpis-toggle"]')
        tile = page.locator('[data-area="hoan-kiem"]')
        expect(tile).to_be_visible(timeout=30_000)
        # The newest values the API gives: the worst station's latest daily VN_AQI, today's boardings.
        today = now.astimezone(HANOI).date()
        period = {"from": (today - timedelta(days=13)).isoformat(), "to": today.isoformat()}
        kpis = http.get("/v1/kpis", params=period).json()
        valid = [d for d in kpis["airDays"] if d["area"] == "hoan-kiem" and d["dailyAqi"] is not None]
        newest = max(d["day"] for d in valid)
        worst = max(d["dailyAqi"] for d in valid if d["day"] == newest)
        [area] = [s for s in kpis["transit"]["scopes"] if s["scope"] == "hoan-kiem"]
        expect(tile.locator('[data-kpi="aqi"] .area-kpi-value')).to_have_text(str(worst))
        boardings = str(area["dailyBoardings"][today.isoformat()])
        expect(tile.locator('[data-kpi="boardings"] .area-kpi-value')).to_have_text(boardings)
        assert tile.locator(".spark canvas").count() == 3
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "history-sensor-vi.png", full_page=True)

        page.click("#lang-en")
        expect(day.locator("figcaption")).to_have_text("Last 24 hours")
        expect(panel.locator(".band-legend")).to_contain_text("Good 0–25")
        expect(tile.locator('[data-kpi="boardings"] .area-kpi-name')).to_have_text("Boardings per day")
        page.screenshot(path=ARTIFACTS / "history-sensor-en.png", full_page=True)

        # The month's KPI page, in the language last chosen, then in Vietnamese.
        month = now.astimezone(HANOI).strftime("%Y-%m")
        page.click('[data-testid="kpi-month-link"]')
        expect(page.locator('[data-testid="kpi-page"]')).to_be_visible()
        page.goto(f"{base}/console/kpis.html?month={month}")
        expect(page.locator("h1")).to_have_text("Monthly KPIs")
        air = page.locator('[data-testid="kpi-air"] tr[data-scope="hoan-kiem"]')
        expect(air).to_be_visible(timeout=30_000)
        expect(page.locator('[data-testid="kpi-transit"] tr[data-scope="09"]')).to_be_visible()
        expect(page.locator('[data-testid="chart-aqi"] canvas')).to_have_count(1)
        expect(page.locator('[data-testid="chart-boardings"] canvas')).to_have_count(1)
        expect(page.locator('[data-testid="chart-visitors"] canvas')).to_have_count(1)
        # The crowd zone's month: 9,000 visitors on its one day, 7 × 5 minutes at or over 80 %, peak 90 %.
        crowd = page.locator('[data-testid="kpi-crowd"]')
        zone = crowd.locator(f'tr[data-scope="{ZONE}"] td')
        expect(zone).to_have_count(7)  # the last: its completeness, today's counts of those expected so far
        for n, text in enumerate(["Văn Miếu – Quốc Tử Giám (zone)", "1", "9,000", "9,000", "0.58", "90 %"]):
            expect(zone.nth(n)).to_have_text(text)
        expect(crowd.locator('tr[data-scope="dong-da"] td').nth(2)).to_have_text("9,000")
        page.screenshot(path=ARTIFACTS / "kpis-month-en.png", full_page=True)
        page.click('[data-lang="vi"]')
        expect(page.locator("h1")).to_have_text("KPI theo tháng")
        expect(page.locator('[data-testid="kpi-air"] tr[data-kind="city"] td').first).to_have_text(
            "Toàn thành phố"
        )
        expect(zone.nth(0)).to_have_text("Văn Miếu – Quốc Tử Giám (khu)")
        expect(zone.nth(2)).to_have_text("9.000")
        page.screenshot(path=ARTIFACTS / "kpis-month-vi.png", full_page=True)
        assert errors == []
    finally:
        context.close()
        api.stop()
