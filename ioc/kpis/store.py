"""What the KPIs read from the history store: air stations' local days of hourly means, traffic and water
windows, transit counts, readings per day and alert lifecycles, from the rows as they are
(``ioc.kpis.days`` keeps what they give per closed day)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg

from ioc.city import City
from ioc.feeds.crowd.index import safe_capacity
from ioc.indices.air import HOURS_PER_DAY, POLLUTANTS
from ioc.indices.transit import DEFAULT_SERVICE_DAY_START, MetroTap
from ioc.kpis import crowd
from ioc.kpis.air import StationDay
from ioc.kpis.completeness import SensorDay, expected_readings
from ioc.kpis.crowd import ZoneDay
from ioc.kpis.ops import Lifecycle
from ioc.kpis.traffic import Interval
from ioc.kpis.transit import DayTrips, StationDayTaps, day_trips, expected_hours
from ioc.kpis.water import Sample

Store = str | psycopg.Connection  # a database's URL, or a connection to it that a caller shares


@contextmanager
def connected(store: Store) -> Iterator[psycopg.Connection]:
    """A connection to ``store``: the one given, or a new one for this read (closed after it)."""
    if isinstance(store, psycopg.Connection):
        yield store
        return
    with psycopg.connect(store) as connection:
        yield connection


def local_span(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[first's local midnight, the local midnight after ``last``)."""
    return datetime.combine(first, time(), zone), datetime.combine(last + timedelta(days=1), time(), zone)


def station_days(url: Store, city: City, first: date, last: date) -> list[StationDay]:
    """Every air station's local days in [first, last] that have at least one hourly mean."""
    zone = ZoneInfo(city.timezone)
    start, end = local_span(first, last, zone)
    # Each pollutant's mean as a column: the server reads the JSON, not Python (the most of the time).
    columns = ", ".join(f"(means->>'{p}')::float8" for p in POLLUTANTS)
    with connected(url) as connection:
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


def traffic_intervals(url: Store, city: City, first: date, last: date, window: str) -> list[Interval]:
    """The registry's traffic detectors' ``window`` windows in the local days [first, last] that have a
    speed (and a free-flow speed in the registry)."""
    zone = ZoneInfo(city.timezone)
    start, end = local_span(first, last, zone)
    with connected(url) as connection:
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


def water_samples(url: Store, city: City, first: date, last: date, window: str) -> list[Sample]:
    """The registry's water stations' ``window`` windows (their means) in the local days [first, last]."""
    start, end = local_span(first, last, ZoneInfo(city.timezone))
    with connected(url) as connection:
        rows = connection.execute(
            "SELECT sensor_id, means, (start AT TIME ZONE %s)::date FROM windows WHERE feed = 'water' "
            "AND window_len = %s AND start >= %s AND start < %s",
            (city.timezone, window, start, end),
        ).fetchall()
    found = []
    for sensor_id, means, day in rows:
        sensor = city.sensor(sensor_id)
        if sensor is not None:
            found.append(Sample(sensor_id, sensor.district, sensor.water_class, means, day))
    return found


def service_hours(city: City, station: str) -> set[int]:
    """The local hours in which a line of the registry serves ``station`` (an hour service starts or ends
    within counts)."""
    hours: set[int] = set()
    for line in city.lines:
        if station in line.stations:
            hours.update(
                range(line.service_start.hour, line.service_end.hour + bool(line.service_end.minute))
            )
    return hours


def transit_station_days(
    url: Store, city: City, first: date, last: date, now: datetime | None = None
) -> list[StationDayTaps]:
    """Every registry station's boardings per line and local day in [first, last] (zero on a day without
    any), its busiest 15 minutes and the service hours it reported a tap in, of those expected
    (``transit.expected_hours``: today's, given ``now``, only until now). Counted by the server: a
    month of a city's taps is millions of rows, so from the sink's counts per quarter hour."""
    zone = ZoneInfo(city.timezone)
    local_now = now.astimezone(zone) if now is not None else None
    start, end = local_span(first, last, zone)
    parameters = {"zone": city.timezone, "start": start, "end": end}
    local_day = "(quarter AT TIME ZONE %(zone)s)::date"
    span = "quarter >= %(start)s AND quarter < %(end)s"
    with connected(url) as connection:
        per_line = connection.execute(
            f"SELECT station_id, line, {local_day}, sum(boardings)::int FROM transit_quarters WHERE {span} "
            "GROUP BY 1, 2, 3",
            parameters,
        ).fetchall()
        # A station's quarters over its lines: its busiest of the day, and the hours it reported in.
        quarters = connection.execute(
            "SELECT station_id, day, max(boardings)::int, array_agg(DISTINCT hour) FILTER (WHERE taps > 0) "
            f"FROM (SELECT station_id, {local_day} AS day, "
            "extract(hour FROM quarter AT TIME ZONE %(zone)s)::int AS hour, "
            f"sum(boardings) AS boardings, sum(taps) AS taps FROM transit_quarters WHERE {span} "
            "GROUP BY station_id, quarter) AS q GROUP BY 1, 2",
            parameters,
        ).fetchall()
    boardings = {(station, line, day): n for station, line, day, n in per_line}
    peak_of = {(station, day): peak for station, day, peak, _ in quarters}
    hours_of = {(station, day): set(hours or ()) for station, day, _, hours in quarters}
    found = []
    for sensor in city.sensors_of("transit"):
        served = service_hours(city, sensor.id)
        for n in range((last - first).days + 1):
            day = first + timedelta(days=n)
            peak, reported = peak_of.get((sensor.id, day), 0), hours_of.get((sensor.id, day), set())
            hour_now = local_now.hour if local_now is not None and day == local_now.date() else None
            expected = expected_hours(served, reported, hour_now)
            # A stop the registry gives no lines: the lines it had taps of that day (a day is its own).
            lines = sensor.lines or sorted({line for s, line, d in boardings if s == sensor.id and d == day})
            for line in lines:
                found.append(
                    StationDayTaps(
                        station=sensor.id,
                        area=sensor.district,
                        line=line,
                        day=day,
                        boardings=boardings.get((sensor.id, line, day), 0),
                        peak_15min=peak,
                        hours_with_taps=len(reported & expected),
                        service_hours=len(expected),
                    )
                )
    return found


def metro_taps(connection: psycopg.Connection, city: City, first: date, last: date) -> list[MetroTap]:
    """The metro's entries and exits in the service days [first, last] (from 04:00 to 04:00 local),
    each card known only by its rider token of that day."""
    zone = ZoneInfo(city.timezone)
    starts_at = timedelta(hours=DEFAULT_SERVICE_DAY_START.hour, minutes=DEFAULT_SERVICE_DAY_START.minute)
    start, end = (moment + starts_at for moment in local_span(first, last, zone))
    rows = connection.execute(
        "SELECT rider, station_id, direction, at FROM transit_taps WHERE mode = 'metro' "
        "AND direction IN ('ENTRY', 'EXIT') AND at >= %s AND at < %s",
        (start, end),
    ).fetchall()
    return [
        MetroTap(rider, station, direction, at.astimezone(zone)) for rider, station, direction, at in rows
    ]


REMATCH_AFTER = timedelta(minutes=5)  # a day whose taps still come (today) is matched at most this often


def metro_trips(url: Store, city: City, first: date, last: date, today: date) -> list[DayTrips]:
    """Each service day's metro trips per station pair in [first, last], from the days' cache
    (``transit_od_days``); a day not cached yet, or whose taps changed (``transit_days_changed``), is
    matched again from its taps and cached, a day still under way at most every ``REMATCH_AFTER``. Days
    after ``today`` have none."""
    last = min(last, today)
    found: list[DayTrips] = []
    if first > last:
        return found
    with connected(url) as connection:
        cached = dict(connection.execute(
            "SELECT day, matched_at FROM transit_od_totals WHERE day BETWEEN %s AND %s", (first, last)
        ).fetchall())  # fmt: skip
        now = connection.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        changed = dict(connection.execute(
            "SELECT day, changed_at FROM transit_days_changed WHERE day BETWEEN %s AND %s", (first, last)
        ).fetchall())  # fmt: skip
        day = first
        while day <= last:
            live = day >= today - timedelta(days=1)  # its taps may still be coming (a day ends at 04:00)
            if day not in cached or (day in changed and (not live or now - cached[day] > REMATCH_AFTER)):
                _match_day(connection, city, day, changed.get(day))
            day += timedelta(days=1)
        pairs: dict[date, dict[tuple[str, str], int]] = defaultdict(dict)
        for day, origin, destination, trips in connection.execute(
            "SELECT day, origin, destination, trips FROM transit_od_days WHERE day BETWEEN %s AND %s "
            "ORDER BY day, origin, destination",
            (first, last),
        ).fetchall():  # at once: thousands of rows, fetched one by one cost more than their use
            pairs[day][(origin, destination)] = trips
        for day, entries, exits in connection.execute(
            "SELECT day, unmatched_entries, unmatched_exits FROM transit_od_totals "
            "WHERE day BETWEEN %s AND %s ORDER BY day",
            (first, last),
        ):
            if pairs.get(day) or entries or exits:
                found.append(DayTrips(day, pairs.get(day, {}), entries, exits))
    return found


def rematch_days(connection: psycopg.Connection, city: City, first: date, last: date) -> None:
    """Match the service days [first, last]'s metro taps into trips again and cache them."""
    changed = dict(connection.execute(
        "SELECT day, changed_at FROM transit_days_changed WHERE day BETWEEN %s AND %s", (first, last)
    ).fetchall())  # fmt: skip
    day = first
    while day <= last:
        _match_day(connection, city, day, changed.get(day))
        day += timedelta(days=1)


def _match_day(connection: psycopg.Connection, city: City, day: date, changed_at: datetime | None) -> None:
    """Match one service day's taps into trips and cache them; clear the day's change mark unless the
    sink marked it again meanwhile (its new taps then count at the next read)."""
    with connection.transaction():
        # One matcher per day: two readers of the same stale day would interleave their rows.
        connection.execute("SELECT pg_advisory_xact_lock(19, %s)", (day.toordinal(),))
        [trips] = day_trips(metro_taps(connection, city, day, day), day) or [DayTrips(day, {}, 0, 0)]
        connection.execute("DELETE FROM transit_od_days WHERE day = %s", (day,))
        with connection.cursor().copy(
            "COPY transit_od_days (day, origin, destination, trips) FROM STDIN"
        ) as copy:
            for (origin, destination), count in trips.pairs.items():
                copy.write_row((day, origin, destination, count))
        connection.execute(
            "INSERT INTO transit_od_totals (day, unmatched_entries, unmatched_exits, matched_at) "
            "VALUES (%s, %s, %s, now()) ON CONFLICT (day) DO UPDATE SET "
            "unmatched_entries = excluded.unmatched_entries, unmatched_exits = excluded.unmatched_exits, "
            "matched_at = excluded.matched_at",
            (day, trips.unmatched_entries, trips.unmatched_exits),
        )
        if changed_at is not None:
            connection.execute(
                "DELETE FROM transit_days_changed WHERE day = %s AND changed_at = %s", (day, changed_at)
            )


def readings_per_day(
    url: Store, city: City, first: date, last: date, intervals: dict[str, int], now: datetime
) -> list[SensorDay]:
    """Every registry sensor of the feeds in ``intervals`` (feed → seconds between readings): its
    readings per local day in [first, last] against those expected, from its hourly windows' counts.
    Days after ``now`` are left out."""
    zone = ZoneInfo(city.timezone)
    start, end = local_span(first, last, zone)
    with connected(url) as connection:
        rows = connection.execute(
            "SELECT feed, sensor_id, (start AT TIME ZONE %s)::date, sum(count)::int FROM windows "
            "WHERE window_len = '1h' AND feed = ANY(%s) AND start >= %s AND start < %s GROUP BY 1, 2, 3",
            (city.timezone, list(intervals), start, end),
        ).fetchall()
    received = {(feed, sensor, day): n for feed, sensor, day, n in rows}
    found = []
    for feed, interval in intervals.items():
        for sensor in city.sensors_of(feed):
            for n in range((last - first).days + 1):
                day = first + timedelta(days=n)
                expected = expected_readings(day, interval, zone, now)
                if expected:
                    got = received.get((feed, sensor.id, day), 0)
                    found.append(SensorDay(feed, sensor.id, sensor.district, day, got, expected))
    return found


def lifecycles(url: Store, start: datetime, end: datetime) -> list[Lifecycle]:
    """The alerts opened in [start, end), each as its latest event tells it."""
    with connected(url) as connection:
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


def crowd_zone_days(url: Store, city: City, first: date, last: date, now: datetime) -> list[ZoneDay]:
    """Every registry crowd zone's local days in [first, last] until ``now``, from its 5-minute windows:
    the most people at once (the windows' largest count, their mean where a row has no maximum), the
    windows at or over 80 % of its safe capacity, the windows received and expected (``ioc.kpis.crowd``).
    Counted by the server: a month is some 9,000 windows a zone."""
    zone = ZoneInfo(city.timezone)
    start, end = local_span(first, last, zone)
    # A zone without a safe capacity has no share to judge: not counted.
    capacities = {z.id: capacity for z in city.sensors_of("crowd") if (capacity := safe_capacity(z))}
    people = "(means->>'people_count')::float8"
    with connected(url) as connection:
        rows = connection.execute(
            "SELECT w.sensor_id, (w.start AT TIME ZONE %(zone)s)::date, "
            f"max(coalesce((w.aggregate->'fields'->'people_count'->>'max')::float8, {people})), "
            f"count(*) FILTER (WHERE {people} >= %(over)s / 100 * z.capacity), count(*) "
            "FROM windows AS w JOIN unnest(%(ids)s::text[], %(capacities)s::float8[]) AS z (id, capacity) "
            "ON w.sensor_id = z.id WHERE w.feed = 'crowd' AND w.window_len = %(window)s "
            f"AND w.start >= %(start)s AND w.start < %(end)s AND means ? 'people_count' GROUP BY 1, 2",
            {
                "zone": city.timezone,
                "over": crowd.OVER_SHARE,
                "ids": list(capacities),
                "capacities": list(capacities.values()),
                "window": f"{crowd.WINDOW_MINUTES}m",
                "start": start,
                "end": end,
            },
        ).fetchall()
    counted = {(zone_id, day): (peak, over, windows) for zone_id, day, peak, over, windows in rows}
    found = []
    for sensor in city.sensors_of("crowd"):
        if sensor.id not in capacities:
            continue
        for n in range((last - first).days + 1):
            day = first + timedelta(days=n)
            expected = expected_readings(day, 60 * crowd.WINDOW_MINUTES, zone, now)
            if expected:
                peak, over, windows = counted.get((sensor.id, day), (0.0, 0, 0))
                found.append(
                    ZoneDay(
                        sensor.id,
                        sensor.district,
                        day,
                        capacities[sensor.id],
                        round(peak),
                        over,
                        windows,
                        expected,
                    )
                )
    return found
