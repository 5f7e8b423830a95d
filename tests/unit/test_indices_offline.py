"""Offline indices: CSV readers and writers, and ``ioc index air|water`` through the CLI."""

import csv
import io
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from ioc.cli import app
from ioc.indices.offline import (
    IndexRow,
    OfflineInputError,
    air_index_rows,
    local_day_and_hour,
    water_index_rows,
    write_index_rows,
)

HANOI = timezone(timedelta(hours=7))
# The decision's PM2.5 example, 09:00 … 20:00 in time order, and its hourly O3 and NO2 at 20:00.
DECISION_PM25 = [26.9, 24.7, 20.5, 23.5, 19.5, 16.5, 19.0, 16.5, 20.3, 22.4, 19.6, 20.6]


def decision_hourly_csv(station: str = "kim-lien") -> str:
    lines = ["station,time,pm25,o3,no2"]
    for hour, pm25 in zip(range(9, 21), DECISION_PM25, strict=True):
        gases = "136.1,118.7" if hour == 20 else ","
        lines.append(f"{station},2026-01-15T{hour:02d}:00:00+07:00,{pm25},{gases}")
    return "\n".join(lines) + "\n"


def decision_daily_csv() -> str:
    """The hours 01:00 … 24:00 of 15 January whose statistics are the decision's daily example."""
    o3 = [20.0] * 24
    o3[11:19] = [114.6, 100.0, 90.0, 85.0, 85.0, 80.0, 80.0, 79.8]
    no2 = [60.0] * 24
    no2[8] = 130.8
    lines = ["Station,Time,PM25,O3,NO2"]  # header names are case-insensitive
    start = datetime(2026, 1, 15, 1, tzinfo=HANOI)
    for hour in range(24):
        moment = (start + timedelta(hours=hour)).isoformat()
        lines.append(f"hang-dau,{moment},55.7,{o3[hour]},{no2[hour]}")
    return "\n".join(lines) + "\n"


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# ---- air ---------------------------------------------------------------------------------------------------
def test_hourly_csv_reproduces_the_decisions_example():
    rows = air_index_rows(io.StringIO(decision_hourly_csv()))
    last = rows[-1]
    assert (last.station, last.time) == ("kim-lien", "2026-01-15T20:00:00+07:00")
    assert (last.index, last.band, last.dominant) == (
        59,
        "trung_binh",
        "no2",
    )  # the decision prints 60: a slip
    # 09:00 has no earlier hour, so no NowCast: no index, and a note why.
    assert rows[0].index is None and "PM2.5" in rows[0].note


def test_hourly_nowcast_never_looks_ahead():
    later = "kim-lien,2026-01-15T21:00:00+07:00,900.0,,\n"
    rows = air_index_rows(io.StringIO(decision_hourly_csv() + later))
    by_time = {row.time: row for row in rows}
    assert by_time["2026-01-15T20:00:00+07:00"].index == 59
    assert by_time["2026-01-15T21:00:00+07:00"].index > 300


def test_rows_are_sorted_by_station_and_time_whatever_the_input_order():
    lines = decision_hourly_csv().splitlines()
    shuffled = "\n".join([lines[0], *reversed(lines[1:])]) + "\n"
    other = "\n".join(decision_hourly_csv("an-khanh").splitlines()[1:]) + "\n"
    rows = air_index_rows(io.StringIO(shuffled + other))
    assert [row.station for row in rows] == ["an-khanh"] * 12 + ["kim-lien"] * 12
    assert rows[-1].index == 59 and rows[11].index == 59


def test_daily_csv_reproduces_the_decisions_example():
    [row] = air_index_rows(io.StringIO(decision_daily_csv()), daily=True)
    assert row == IndexRow("hang-dau", "2026-01-15", 110, "kem", "pm25")


def test_the_midnight_hour_closes_the_previous_day():
    assert local_day_and_hour(datetime(2026, 1, 16, 0, tzinfo=HANOI)) == (date(2026, 1, 15), 24)
    assert local_day_and_hour(datetime(2026, 1, 16, 1, tzinfo=HANOI)) == (date(2026, 1, 16), 1)
    # The day follows the time's own offset: 17:00 UTC is 00:00 in Hanoi.
    assert local_day_and_hour(datetime(2026, 1, 15, 17, tzinfo=UTC)) == (date(2026, 1, 15), 17)


def test_daily_groups_by_local_day():
    # 01:00 … 24:00 of the 15th plus 01:00 of the 16th: two days, the second with too few hours.
    extra = "hang-dau,2026-01-16T01:00:00+07:00,55.7,20.0,60.0\n"
    rows = air_index_rows(io.StringIO(decision_daily_csv() + extra), daily=True)
    assert [(row.time, row.index) for row in rows] == [("2026-01-15", 110), ("2026-01-16", None)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("station,time,pm25\nkim-lien,2026-01-15T08:00:00+07:00,20\nkim-lien,2026-01-15T09:00:00,20\n",
         r"line 3 \(station kim-lien\): time '2026-01-15T09:00:00' has no UTC offset"),
        ("station,time,pm25\nkim-lien,yesterday,20\n", "line 2.*not ISO 8601"),
        ("station,time,pm25\nkim-lien,2026-01-15T08:00:00+07:00,lots\n", "line 2.*'lots' is not a number"),
        ("station,time,pm25\nkim-lien,2026-01-15T08:00:00+07:00,-3\n", "line 2.*≥ 0"),
        ("station,time,pm25\nkim-lien,2026-01-15T08:30:00+07:00,20\n", "line 2.*not on the hour"),
        ("station,time,pm25\nk,2026-01-15T08:00:00+07:00,20\nk,2026-01-15T01:00:00Z,21\n",
         "line 3.*same station and time as line 2"),
        ("station,time,pm25\n,2026-01-15T08:00:00+07:00,20\n", "line 2: station is empty"),
        ("time,pm25\n2026-01-15T08:00:00+07:00,20\n", "no station column"),
        ("station,time,temperature\nk,2026-01-15T08:00:00+07:00,20\n", "none of the columns"),
        ("", "empty"),
    ],
)  # fmt: skip
def test_bad_air_input_is_refused_with_its_line(text, message):
    with pytest.raises(OfflineInputError, match=message):
        air_index_rows(io.StringIO(text))


# ---- water -------------------------------------------------------------------------------------------------
WATER_CSV = (
    "station,time,ph,dissolved_oxygen,temperature,bod5,cod,nh4_n,coliform,e_coli,turbidity\n"
    "ho-tay,2026-01-15T09:00:00+07:00,7.2,,,4,10,0.2,2000,10,5\n"
    "to-lich,2026-01-15T09:00:00+07:00,7.1,0.5,28,60,160,20,1000000,100000,80\n"
    "nhue,2026-01-15T09:00:00+07:00,7.0,,,5,,,,,\n"
)


def test_water_csv():
    rows = {row.station: row for row in water_index_rows(io.StringIO(WATER_CSV))}
    # Hồ Tây: pH 100; IV: BOD5, COD, N-NH4 all 100; V: both 100 → 100.
    assert (rows["ho-tay"].index, rows["ho-tay"].band) == (100, "rat_tot")
    # Tô Lịch: every group IV and V sub-index is 10 → 10.
    assert (rows["to-lich"].index, rows["to-lich"].band) == (10, "kem")
    assert rows["to-lich"].dominant == "dissolved_oxygen_percent"
    assert rows["nhue"].index is None and "2 of 5" in rows["nhue"].note


def test_water_variant_changes_the_last_factor():
    text = "station,time,ph,bod5,cod,toc,coliform\ns,2026-01-15T09:00:00+07:00,7,4,10,4,10000\n"
    # IV = 100, V = 25: cube root (100²·25)^(1/3) ≈ 63.0; square root √(100·25) = 50.
    assert water_index_rows(io.StringIO(text))[0].index == 63
    assert water_index_rows(io.StringIO(text), variant="sqrt")[0].index == 50


def test_write_index_rows():
    out = io.StringIO()
    write_index_rows(
        [IndexRow("a", "2026-01-15", 110, "kem", "pm25"), IndexRow("b", "2026-01-15", None, None, None)], out
    )
    assert out.getvalue() == "station,time,index,band,dominant\na,2026-01-15,110,kem,pm25\nb,2026-01-15,,,\n"


# ---- the CLI -----------------------------------------------------------------------------------------------
def test_cli_index_air_hourly_daily_and_errors(tmp_path):
    runner = CliRunner()
    hourly = tmp_path / "hourly.csv"
    hourly.write_text(decision_hourly_csv(), encoding="utf-8")
    result = runner.invoke(app, ["index", "air", "--input", str(hourly)])
    assert result.exit_code == 0, result.output
    rows = rows_of(result.stdout)
    assert len(rows) == 12
    assert rows[-1] == {"station": "kim-lien", "time": "2026-01-15T20:00:00+07:00", "index": "59",
                        "band": "trung_binh", "dominant": "no2"}  # fmt: skip
    assert "1 of 12 rows have no index" in result.stderr

    daily, output = tmp_path / "daily.csv", tmp_path / "out" / "daily-index.csv"
    daily.write_text(decision_daily_csv(), encoding="utf-8")
    output.parent.mkdir()
    result = runner.invoke(app, ["index", "air", "--input", str(daily), "--daily", "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert rows_of(output.read_text(encoding="utf-8")) == [
        {"station": "hang-dau", "time": "2026-01-15", "index": "110", "band": "kem", "dominant": "pm25"}
    ]

    naive = tmp_path / "naive.csv"
    naive.write_text("station,time,pm25\nkim-lien,2026-01-15T08:00:00,20\n", encoding="utf-8")
    result = runner.invoke(app, ["index", "air", "--input", str(naive)], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "line 2" in result.output and "no UTC offset" in result.output


def test_cli_index_water(tmp_path):
    samples = tmp_path / "samples.csv"
    samples.write_text(WATER_CSV, encoding="utf-8")
    result = CliRunner().invoke(app, ["index", "water", "--input", str(samples), "--variant", "sqrt"])
    assert result.exit_code == 0, result.output
    assert [(row["station"], row["index"]) for row in rows_of(result.stdout)] == [
        ("ho-tay", "100"),
        ("nhue", ""),
        ("to-lich", "10"),
    ]
    bad = CliRunner().invoke(app, ["index", "water", "--input", str(samples), "--variant", "mean"])
    assert bad.exit_code == 2
