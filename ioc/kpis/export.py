"""``ioc export``: the open-data files of a period, from the history store.

Per period a folder ``<from>_<to>/`` under the open-data directory (``IOC_OPEN_DATA_DIR``), which the
API serves to anyone at ``/open-data/``: the KPI report (``kpis.json``, and ``kpis.csv`` one row per
value), each air station's daily VN_AQI (``air-daily.csv``) and the stations with their period's
figures (``stations.geojson``); and ``index.json`` listing every period exported. Only aggregates of
fixed stations: no card, no operator, no alert text, nothing about a person.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from ioc.city import City
from ioc.kpis.report import CSV_COLUMNS, Kpis, csv_rows, read_report

DAILY_COLUMNS = [
    "station", "area", "day", "valid", "completeness", "daily_aqi", "band", "exceeded", "daily_us_aqi",
    "us_band",
]  # fmt: skip


def export_period(
    url: str, city: City, first: date, last: date, directory: Path, intervals: Mapping[str, int]
) -> Path:
    """Write the period's files (replacing an earlier export of it) and update the index; its folder.
    ``intervals``: seconds between a sensor's readings per feed, for the completeness figures."""
    report = read_report(url, city, first, last, intervals)
    folder = directory / f"{first.isoformat()}_{last.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    _write_text(folder / "kpis.json", report.model_dump_json(by_alias=True, indent=2) + "\n")
    _write_csv(folder / "kpis.csv", CSV_COLUMNS, csv_rows(report))
    daily = [
        [d.station, d.area, d.day.isoformat(), d.valid, round(d.completeness, 3), d.daily_aqi, d.band,
         " ".join(d.exceeded), d.daily_us_aqi, d.us_band]
        for d in report.air_days
    ]  # fmt: skip
    _write_csv(folder / "air-daily.csv", DAILY_COLUMNS, daily)
    _write_text(
        folder / "stations.geojson", json.dumps(stations_geojson(city, report), ensure_ascii=False) + "\n"
    )
    periods = sorted(p.name for p in directory.iterdir() if p.is_dir() and (p / "kpis.json").exists())
    index = {
        "periods": [
            {"period": name, "files": sorted(f.name for f in (directory / name).iterdir())}
            for name in periods
        ]
    }
    _write_text(directory / "index.json", json.dumps(index, indent=2) + "\n")
    return folder


def stations_geojson(city: City, report: Kpis) -> dict:
    """The air stations as points, each with its period's figures."""
    by_station = {scope.scope: scope for scope in report.air}
    features = []
    for sensor in sorted((s for s in city.sensors if s.kind == "air"), key=lambda s: s.id):
        figures = by_station.get(sensor.id)
        properties: dict[str, object] = {"id": sensor.id, "name": sensor.name, "area": sensor.district}
        if figures is not None:
            properties |= figures.model_dump(by_alias=True, exclude={"scope", "stations"})
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [sensor.lon, sensor.lat]},
                "properties": properties,
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "properties": {"from": report.first_day.isoformat(), "to": report.last_day.isoformat(),
                       "standard": report.standard},
    }  # fmt: skip


def _write_text(path: Path, text: str) -> None:
    # Whole or not at all: the API may serve the file while it is written.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def _write_csv(path: Path, columns: list[str], rows: list[list[object]]) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
    partial.replace(path)
