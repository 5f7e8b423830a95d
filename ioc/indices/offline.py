"""Offline indices over CSV text streams: the readers and writers behind ``ioc index air|water``.

Input: a header row, then one row per station and hour (air) or per sample (water). Columns ``station``,
``time`` (ISO 8601 with its UTC offset), then any of the pollutants ``pm25, pm10, no2, so2, co, o3``
in µg/m³ (air) or the water parameters of ``ioc.indices.water`` (water); an empty cell is a missing value,
other columns are ignored, header names are case-insensitive.

Air times are on the hour and label the hour they end, as Decision 1459 does (01:00 is the mean of
00:00–01:00), so a local day holds the hours 01:00 … 24:00 (= next day's 00:00). The hourly index takes
PM's NowCast from the same station's rows of the previous 11 hours (never later ones); the daily index groups
by the local day of each row's own offset.

Output: ``station,time,index,band,dominant`` sorted by station and time; an empty index means the data do
not allow one (the row's ``note`` says why). Same functions as the stream agents: ``ioc.indices.air`` and
``ioc.indices.water``.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TextIO

from ioc.indices.air import (
    HOURS_PER_DAY,
    NOWCAST_HOURS,
    PARTICULATES,
    POLLUTANTS,
    vn_aqi_daily,
    vn_aqi_hourly,
)
from ioc.indices.water import WqiVariant, vn_wqi, wqi_parameters

OUTPUT_COLUMNS = ("station", "time", "index", "band", "dominant")
WATER_INPUTS = (*wqi_parameters(), "dissolved_oxygen", "temperature")
_HOUR = timedelta(hours=1)
_NO_PM = "no PM2.5 or PM10 value (hourly: 2 of the last 3 hours; daily: 18 hours)"


class OfflineInputError(ValueError):
    """A CSV that cannot be read as index input; the message names the line."""


@dataclass(frozen=True)
class IndexRow:
    station: str
    time: str
    index: int | None
    band: str | None
    dominant: str | None
    note: str | None = None  # why there is no index


@dataclass(frozen=True)
class Reading:
    line: int
    station: str
    time: datetime
    values: dict[str, float | None]


def _parse_time(cell: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(cell.strip())
    except ValueError:
        example = "2026-01-15T08:00:00+07:00"
        raise OfflineInputError(f"{where}: time {cell!r} is not ISO 8601 (e.g. {example})") from None
    if moment.tzinfo is None:
        raise OfflineInputError(
            f"{where}: time {cell!r} has no UTC offset; write it with one, e.g. {moment.isoformat()}+07:00"
        )
    return moment


def _parse_value(cell: str | None, column: str, where: str) -> float | None:
    if cell is None or not cell.strip():
        return None
    try:
        value = float(cell)
    except ValueError:
        raise OfflineInputError(f"{where}: {column} {cell!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise OfflineInputError(f"{where}: {column} must be a number ≥ 0, got {cell!r}")
    return value


def read_readings(source: TextIO, columns: Sequence[str], on_the_hour: bool = False) -> list[Reading]:
    """Rows of a CSV with ``station``, ``time`` and any of ``columns``; one row per station and time."""
    reader = csv.DictReader(source)
    if reader.fieldnames is None:
        raise OfflineInputError("the input is empty: expected a header row station,time,…")
    reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]
    missing = [name for name in ("station", "time") if name not in reader.fieldnames]
    if missing:
        raise OfflineInputError(f"line 1: the header has no {' or '.join(missing)} column")
    present = [name for name in columns if name in reader.fieldnames]
    if not present:
        raise OfflineInputError(f"line 1: the header has none of the columns {', '.join(columns)}")
    readings: list[Reading] = []
    seen: dict[tuple[str, datetime], int] = {}
    for record in reader:
        station = (record.get("station") or "").strip()
        where = f"line {reader.line_num}" + (f" (station {station})" if station else "")
        if not station:
            raise OfflineInputError(f"{where}: station is empty")
        moment = _parse_time(record.get("time") or "", where)
        if on_the_hour and (moment.minute, moment.second, moment.microsecond) != (0, 0, 0):
            raise OfflineInputError(f"{where}: time {moment.isoformat()} is not on the hour (hourly means)")
        if (station, moment) in seen:
            raise OfflineInputError(f"{where}: same station and time as line {seen[station, moment]}")
        seen[station, moment] = reader.line_num
        values = {name: _parse_value(record.get(name), name, where) for name in present}
        readings.append(Reading(reader.line_num, station, moment, values))
    return sorted(readings, key=lambda reading: (reading.station, reading.time))


def _by_station(readings: Iterable[Reading]) -> dict[str, list[Reading]]:
    stations: dict[str, list[Reading]] = defaultdict(list)
    for reading in readings:
        stations[reading.station].append(reading)
    return stations


def air_hourly_rows(readings: Sequence[Reading]) -> list[IndexRow]:
    """Hourly VN_AQI per reading; PM from the NowCast over that station's hours up to this one."""
    rows = []
    for station, station_readings in _by_station(readings).items():
        at = {reading.time: reading.values for reading in station_readings}
        for reading in station_readings:
            recent = [at.get(reading.time - age * _HOUR, {}) for age in range(NOWCAST_HOURS)]
            means = {
                pollutant: [hour.get(pollutant) for hour in recent]
                if pollutant in PARTICULATES
                else [reading.values[pollutant]]
                for pollutant in POLLUTANTS
                if pollutant in reading.values
            }
            result = vn_aqi_hourly(means)
            time = reading.time.isoformat()
            if result is None:
                rows.append(IndexRow(station, time, None, None, None, note=_NO_PM))
            else:
                rows.append(IndexRow(station, time, result.value, result.band.key, result.dominant))
    return rows


def local_day_and_hour(moment: datetime) -> tuple[date, int]:
    """The local day (01:00 … 24:00) an hourly mean labelled ``moment`` belongs to, and its hour 1–24."""
    if moment.hour == 0:
        return moment.date() - timedelta(days=1), HOURS_PER_DAY
    return moment.date(), moment.hour


def air_daily_rows(readings: Sequence[Reading]) -> list[IndexRow]:
    """Daily VN_AQI per station and local day."""
    days: dict[tuple[str, date], dict[str, list[float | None]]] = {}
    for reading in readings:
        day, hour = local_day_and_hour(reading.time)
        slots = days.setdefault((reading.station, day), {})
        for pollutant, value in reading.values.items():
            slots.setdefault(pollutant, [None] * HOURS_PER_DAY)[hour - 1] = value
    rows = []
    for (station, day), day_means in sorted(days.items()):
        result = vn_aqi_daily(day_means)
        if result is None:
            rows.append(IndexRow(station, day.isoformat(), None, None, None, note=_NO_PM))
        else:
            rows.append(IndexRow(station, day.isoformat(), result.value, result.band.key, result.dominant))
    return rows


def air_index_rows(source: TextIO, daily: bool = False) -> list[IndexRow]:
    """VN_AQI rows from an air readings CSV: hourly, or per local day with ``daily``."""
    readings = read_readings(source, POLLUTANTS, on_the_hour=True)
    return air_daily_rows(readings) if daily else air_hourly_rows(readings)


def water_index_rows(source: TextIO, variant: WqiVariant = "cube_root") -> list[IndexRow]:
    """VN_WQI per sample from a water samples CSV."""
    rows = []
    for reading in read_readings(source, WATER_INPUTS):
        result = vn_wqi(reading.values, variant)
        time = reading.time.isoformat()
        band = result.band.key if result.band else None
        dominant = result.dominant if result.sufficient else None
        rows.append(IndexRow(reading.station, time, result.value, band, dominant, note=result.insufficient))
    return rows


def write_index_rows(rows: Iterable[IndexRow], out: TextIO) -> None:
    """``station,time,index,band,dominant`` CSV; empty cells where there is no index."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(OUTPUT_COLUMNS)
    for row in rows:
        cells = (row.station, row.time, row.index, row.band, row.dominant)
        writer.writerow("" if cell is None else cell for cell in cells)
