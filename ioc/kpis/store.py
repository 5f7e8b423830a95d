"""What the KPIs read from the history store: air stations' local days of hourly means, and alert
lifecycles. Computed when asked, from the rows as they are, so late data is in the next answer."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg

from ioc.city import City
from ioc.indices.air import HOURS_PER_DAY, POLLUTANTS
from ioc.kpis.air import StationDay
from ioc.kpis.ops import Lifecycle
from ioc.kpis.traffic import Interval
from ioc.kpis.water import Sample


def local_span(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[first's local midnight, the local midnight after ``last``)."""
    return datetime.combine(first, time(), zone), datetime.combine(last + timedelta(days=1), time(), zone)


def station_days(url: str, city: City, first: date, last: date) -> list[StationDay]:
    """Every air station's local days in [first, last] that have at least one hourly mean."""
    zone = ZoneInfo(city.timezone)
    start, end = local_span(first, last, zone)
    # Each pollutant's mean as a column: the server reads the JSON, not Python (the most of the time).
    columns = ", ".join(f"(means->>'{p}')::float8" for p in POLLUTANTS)
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            f"SELECT sensor_id, start, {columns} FROM windows WHERE feed = 'air' AND window_len = '1h' "
            "AND start >= %s AND start < %s",
            (start, end),
        ).fetchall()
    hours: dict[tuple[str, date], dict[str, list[float | None]]] = defaultdict(
        lambda: {p: [None] * HOURS_PER_DAY for p in POLLUTANTS}
    )
    for sensor_id, begins, *means in rows:
        local = begins.astimezone(zone)
        day = hours[(sensor_id, local.date())]
        for pollutant, mean in zip(POLLUTANTS, means, strict=True):
            if mean is not None:
                day[pollutant][local.hour] = mean
    found = []
    for (sensor_id, day), series in sorted(hours.items()):
        sensor = city.sensor(sensor_id)
        if sensor is not None:  # the registry's stations: areas and expected days come from it
            found.append(StationDay(sensor_id, sensor.district, day, series))
    return found


def traffic_intervals(url: str, city: City, first: date, last: date, window: str) -> list[Interval]:
    """The registry's traffic detectors' ``window`` windows in the local days [first, last] that have a
    speed (and a free-flow speed in the registry)."""
    zone = ZoneInfo(city.timezone)
    start, end = local_span(first, last, zone)
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT sensor_id, start, (means->>'average_vehicle_speed')::float8, "
            "coalesce((means->>'intensity')::float8, 0) FROM windows WHERE feed = 'traffic' "
            "AND window_len = %s AND start >= %s AND start < %s AND means ? 'average_vehicle_speed'",
            (window, start, end),
        ).fetchall()
    found = []
    for sensor_id, begins, speed, flow in rows:
        sensor = city.sensor(sensor_id)
        if sensor is not None and sensor.free_flow_speed:
            found.append(
                Interval(
                    sensor_id, sensor.district, begins.astimezone(zone), speed, flow, sensor.free_flow_speed
                )
            )
    return found


def water_samples(url: str, city: City, first: date, last: date, window: str) -> list[Sample]:
    """The registry's water stations' ``window`` windows (their means) in the local days [first, last]."""
    start, end = local_span(first, last, ZoneInfo(city.timezone))
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT sensor_id, means FROM windows WHERE feed = 'water' AND window_len = %s "
            "AND start >= %s AND start < %s",
            (window, start, end),
        ).fetchall()
    found = []
    for sensor_id, means in rows:
        sensor = city.sensor(sensor_id)
        if sensor is not None:
            found.append(Sample(sensor_id, sensor.district, sensor.water_class, means))
    return found


def lifecycles(url: str, start: datetime, end: datetime) -> list[Lifecycle]:
    """The alerts opened in [start, end), each as its latest event tells it."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT opened.alert_id, opened.at, latest.event FROM alert_events AS opened "
            "JOIN LATERAL (SELECT event FROM alert_events AS e WHERE e.alert_id = opened.alert_id "
            "ORDER BY revision DESC LIMIT 1) AS latest ON true "
            "WHERE opened.change = 'opened' AND opened.at >= %s AND opened.at < %s",
            (start, end),
        ).fetchall()
    found = []
    for alert_id, opened_at, event in rows:
        alert = (event if isinstance(event, dict) else json.loads(event))["alert"]
        found.append(
            Lifecycle(
                alert_id=alert_id,
                severity=alert["severity"],
                feed=alert["feed"],
                area=alert["district"],
                opened_at=opened_at,
                acknowledged_at=_moment(alert.get("acknowledgedAt")),
                resolved_at=_moment(alert.get("resolvedAt")),
                resolved_by=alert.get("resolvedBy"),
            )
        )
    return found


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
