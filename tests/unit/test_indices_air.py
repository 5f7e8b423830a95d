"""VN_AQI (Decision 1459/QĐ-TCMT) and US EPA AQI: the decision's worked examples, breakpoints, bands."""

import math
import random
from decimal import ROUND_HALF_UP, Decimal

import pytest

from ioc.indices.air import (
    VN_AQI_BANDS,
    NowcastHistory,
    aqi_band,
    highest_rolling_mean,
    nowcast,
    nowcast_with,
    o3_daily_sub_index,
    sub_index,
    to_us_unit,
    truncate_us,
    us_aqi,
    us_aqi_category,
    us_sub_index,
    vn_aqi_daily,
    vn_aqi_hourly,
    vn_aqi_hourly_index,
    vn_aqi_of_hour,
)
from ioc.indices.rounding import round_half_up

# The decision's PM2.5 example: hourly means from 20:00 back to 09:00, c1 first.
DECISION_PM25_12H = [20.6, 19.6, 22.4, 20.3, 16.5, 19.0, 16.5, 19.5, 23.5, 20.5, 24.7, 26.9]

# The breakpoint table of air_quality.md, typed again here so a slip in either copy shows.
LEVELS = [0, 50, 100, 150, 200, 300, 400, 500]
REFERENCE_TABLE = {
    ("o3", "1h"): [0, 160, 200, 300, 400, 800, 1000, 1200],
    ("o3", "8h"): [0, 100, 120, 170, 210, 400],
    ("co", "1h"): [0, 10000, 30000, 45000, 60000, 90000, 120000, 150000],
    ("so2", "1h"): [0, 125, 350, 550, 800, 1600, 2100, 2630],
    ("no2", "1h"): [0, 100, 200, 700, 1200, 2350, 3100, 3850],
    ("pm10", "24h"): [0, 50, 150, 250, 350, 420, 500, 600],
    ("pm25", "24h"): [0, 25, 50, 80, 150, 250, 350, 500],
}


# ---- rounding ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (59.35, 59),
        (65.4, 65),
        (109.5, 110),
        (44.65, 45),
        (42.53125, 43),
        (0.5, 1),
        (0.49, 0),
        (100 + 50 / 30 * 5.7, 110),
    ],
)
def test_round_half_up(value, expected):
    assert round_half_up(value) == expected


def test_round_half_up_gives_the_decimal_rule_everywhere():
    """Far from a half the plain comparison stands in for the decimal arithmetic: same results."""

    def by_decimal(value: float) -> int:
        return int(Decimal(repr(round(value, 6))).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    rng = random.Random(7)
    near_halves = [k + 0.5 + d for k in range(0, 300, 7) for d in (0, 1e-7, -1e-7, 4e-6, -4e-6, 2e-5, -2e-5)]
    values = [rng.uniform(0, 600) for _ in range(20000)] + [
        rng.randrange(0, 10**7) / 10**4 for _ in range(20000)
    ]
    for value in [*near_halves, *values, 0.0, 1e15, 2.0**52 + 0.5, -0.5, -1.5, -2.4]:
        assert round_half_up(value) == by_decimal(value), value


# ---- NowCast ----------------------------------------------------------------------------------------------
def test_nowcast_reproduces_the_decisions_example():
    # w* = 16.5/26.9 ≈ 0.61 > 0.5, so the weighted form applies; the decision prints 20.27 (≈ 20.3).
    assert min(DECISION_PM25_12H) / max(DECISION_PM25_12H) == pytest.approx(0.61, abs=0.005)
    value = nowcast(DECISION_PM25_12H)
    assert round(value, 2) == 20.27


def test_nowcast_uses_only_the_newest_twelve_hours():
    assert nowcast([*DECISION_PM25_12H, 500.0, 500.0]) == nowcast(DECISION_PM25_12H)


def test_nowcast_with_weight_at_most_half_is_the_decisions_halving_sum():
    # w* = 10/40 = 0.25 → w = 0.5 and NowCast = Σ 0.5^i·c_i: 0.5·10 + 0.25·40.
    assert nowcast([10.0, 40.0]) == pytest.approx(15.0)
    # A missing hour has weight 0 (the decision's formula is not renormalised): 0.5·10 + 0.125·40.
    assert nowcast([10.0, None, 40.0]) == pytest.approx(10.0)


def test_nowcast_weighted_form_by_hand():
    # w = 30/40 = 0.75: (40 + 0.75·30 + 0.5625·35) / (1 + 0.75 + 0.5625)
    expected = (40 + 0.75 * 30 + 0.5625 * 35) / (1 + 0.75 + 0.5625)
    assert nowcast([40.0, 30.0, 35.0]) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("hours", "valid"),
    [
        ([10.0, 12.0, None], True),
        ([10.0, None, 12.0], True),
        ([None, 10.0, 12.0], True),
        ([10.0, None, None, 12.0, 13.0], False),
        ([None, None, 10.0, 12.0], False),
        ([10.0], False),
        ([], False),
    ],
)
def test_nowcast_needs_two_of_the_three_newest_hours(hours, valid):
    assert (nowcast(hours) is not None) is valid


def nowcast_as_written(hourly_means: list[float | None]) -> float | None:
    """The decision's NowCast, term by term in age order (the first implementation)."""
    recent = list(hourly_means[:12])
    if sum(value is not None for value in recent[:3]) < 2:
        return None
    available = [value for value in recent if value is not None]
    highest = max(available)
    if highest == 0:
        return 0.0
    weight = min(available) / highest
    if weight <= 0.5:
        return sum(0.5**hour * value for hour, value in enumerate(recent, start=1) if value is not None)
    weighted = sum(weight**age * value for age, value in enumerate(recent) if value is not None)
    return weighted / sum(weight**age for age, value in enumerate(recent) if value is not None)


def test_nowcast_from_the_hours_before_gives_the_formulas_float_for_float():
    """The hours before this one are worked out once an hour (``NowcastHistory``); with this hour's mean
    inside, above or below them, or missing, the NowCast is the formulas' to the last bit."""
    rng = random.Random(3)
    for _ in range(5000):
        older = [None if rng.random() < 0.2 else round(rng.lognormvariate(3.5, 0.4), 1) for _ in range(11)]
        history = NowcastHistory.of(older)
        for current in (None, 0.0, min(v for v in older if v is not None) if any(older) else 5.0,
                        rng.uniform(10, 80), rng.uniform(0, 300), 1000.0):  # fmt: skip
            assert nowcast_with(current, history) == nowcast_as_written([current, *older]), (current, older)
            assert nowcast([current, *older]) == nowcast_as_written([current, *older])


def test_the_hourly_index_alone_is_the_hourly_vn_aqis_value_and_band():
    """The live index skips a gas's sub-index when it cannot be the highest: the same value and band."""
    rng = random.Random(5)
    for _ in range(5000):
        concentrations = {
            "pm25": rng.choice([None, rng.uniform(0, 400)]),
            "pm10": rng.choice([None, rng.uniform(0, 500)]),
            "o3": rng.uniform(0, 900),
            "no2": rng.choice([rng.uniform(0, 150), rng.uniform(0, 3000)]),
            "so2": rng.uniform(0, 400),
            "co": rng.uniform(0, 40000),
        }
        result = vn_aqi_of_hour(concentrations)
        index = vn_aqi_hourly_index(concentrations)
        assert (index is None) == (result is None)
        if result is not None and index is not None:
            assert index == (result.value, result.band)


def test_nowcast_of_clean_air_is_zero():
    assert nowcast([0.0, 0.0, 0.0]) == 0.0


# ---- sub-indices and breakpoints -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pollutant", "averaging", "concentration", "level"),
    [
        (pollutant, averaging, concentration, LEVELS[i])
        for (pollutant, averaging), breakpoints in REFERENCE_TABLE.items()
        for i, concentration in enumerate(breakpoints)
    ],
)
def test_every_breakpoint_gives_its_level(pollutant, averaging, concentration, level):
    assert sub_index(pollutant, concentration, averaging) == pytest.approx(level)


@pytest.mark.parametrize(("pollutant", "averaging"), list(REFERENCE_TABLE))
def test_sub_index_is_linear_inside_each_segment(pollutant, averaging):
    breakpoints = REFERENCE_TABLE[pollutant, averaging]
    for i in range(1, len(breakpoints)):
        middle = (breakpoints[i - 1] + breakpoints[i]) / 2
        assert sub_index(pollutant, middle, averaging) == pytest.approx((LEVELS[i - 1] + LEVELS[i]) / 2)


def test_particulates_use_the_same_column_hourly_and_daily():
    assert sub_index("pm25", 37.5, "1h") == sub_index("pm25", 37.5, "24h") == pytest.approx(75)


def test_above_the_top_breakpoint_the_last_segment_goes_on():
    # PM2.5: 350 → 400, 500 → 500, so 650 → 600.
    assert sub_index("pm25", 650) == pytest.approx(600)
    assert aqi_band(600).key == "nguy_hai"


def test_o3_8h_above_400_has_no_sub_index():
    assert sub_index("o3", 400, "8h") == pytest.approx(300)
    with pytest.raises(ValueError, match="1-hour"):
        sub_index("o3", 400.1, "8h")


@pytest.mark.parametrize(
    ("pollutant", "concentration", "averaging", "message"),
    [
        ("pm1", 10, "1h", "unknown pollutant"),
        ("no2", 10, "8h", "no 8h column"),
        ("pm25", 10, "8h", "no 8h column"),
        ("pm25", -1, "1h", "≥ 0"),
        ("co", math.nan, "1h", "≥ 0"),
    ],
)
def test_sub_index_refuses_what_the_table_does_not_cover(pollutant, concentration, averaging, message):
    with pytest.raises(ValueError, match=message):
        sub_index(pollutant, concentration, averaging)


# ---- the decision's worked examples -----------------------------------------------------------------------
def test_hourly_worked_example():
    result = vn_aqi_hourly({"o3": [136.1], "no2": [118.7], "pm25": DECISION_PM25_12H})
    assert result is not None
    # The decision's figures: O3 136.1 → 42.5 → 43; NO2 118.7 → 59.35; PM2.5 NowCast 20.27 → 40.5 → 41.
    assert result.sub_indices["o3"] == pytest.approx(42.53, abs=0.005)
    assert round_half_up(result.sub_indices["o3"]) == 43
    assert result.sub_indices["no2"] == pytest.approx(59.35)
    assert round(result.sub_indices["pm25"], 1) == 40.5
    assert round_half_up(result.sub_indices["pm25"]) == 41
    assert result.dominant == "no2"
    # The decision prints AQI^h = 60 here. Its maximum sub-index is 59.35, which rounds half up to 59 (and
    # its own daily example rounds 65.4 down to 65), so the printed 60 is taken as a slip in the document.
    assert result.value == 59
    assert result.band.key == "trung_binh"
    assert result.method == "VN_AQI"


def _decision_daily_example() -> dict[str, list[float | None]]:
    """A day (hours 01:00 … 24:00) whose statistics are the decision's daily example."""
    o3 = [20.0] * 24
    # Hours 12:00–19:00 average 89.3 (the day's highest 8-hour mean) and peak at 114.6 (highest hour).
    o3[11:19] = [114.6, 100.0, 90.0, 85.0, 85.0, 80.0, 80.0, 79.8]
    no2 = [60.0] * 24
    no2[8] = 130.8
    return {"pm25": [55.7] * 24, "no2": no2, "o3": o3}


def test_daily_example_statistics_are_what_the_decision_lists():
    day = _decision_daily_example()
    assert highest_rolling_mean(day["o3"]) == pytest.approx(89.3)
    assert max(day["o3"]) == 114.6


def test_daily_worked_example():
    # The decision: O3 8h max 89.3 → 45; O3 1h max 114.6 → 36; NO2 1h max 130.8 → 65; PM2.5 24h 55.7 → 110.
    assert round_half_up(sub_index("o3", 89.3, "8h")) == 45
    assert round_half_up(sub_index("o3", 114.6, "1h")) == 36
    assert round_half_up(sub_index("no2", 130.8, "1h")) == 65
    assert round_half_up(sub_index("pm25", 55.7, "24h")) == 110

    result = vn_aqi_daily(_decision_daily_example())
    assert result is not None
    assert result.sub_indices["o3"] == pytest.approx(44.65)  # the larger of 44.65 (8h) and 35.81 (1h)
    assert result.sub_indices["no2"] == pytest.approx(65.4)
    assert result.sub_indices["pm25"] == pytest.approx(109.5)
    assert (result.value, result.dominant, result.band.key) == (110, "pm25", "kem")


def test_daily_o3_uses_only_the_1h_sub_index_when_the_8h_mean_is_above_400():
    # 1-hour column: 400 → 200, 800 → 300, so 500 → 225.
    assert o3_daily_sub_index(500, 450) == pytest.approx(225)
    assert o3_daily_sub_index(500, 400) == pytest.approx(300)  # 8h 400 → 300 still counts
    assert o3_daily_sub_index(None, 450) is None


def test_daily_pm_mean_needs_18_hours():
    pm25 = [40.0] * 18 + [None] * 6
    assert vn_aqi_daily({"pm25": pm25}).sub_indices["pm25"] == pytest.approx(80)
    assert vn_aqi_daily({"pm25": [40.0] * 17 + [None] * 7}) is None


def test_daily_rolling_means_need_six_of_eight_hours():
    hours = [None] * 24
    hours[0:5] = [300.0] * 5  # five hours: no valid 8-hour window
    assert highest_rolling_mean(hours) is None
    hours[5] = 300.0
    assert highest_rolling_mean(hours) == pytest.approx(300.0)


def test_daily_needs_24_slots():
    with pytest.raises(ValueError, match="24 hourly means"):
        vn_aqi_daily({"pm25": [40.0] * 23})


def test_no_index_without_particulates():
    assert vn_aqi_hourly({"o3": [136.1], "no2": [118.7]}) is None
    assert vn_aqi_hourly({"pm25": [None, None, 20.0], "no2": [118.7]}) is None


def test_a_gas_without_this_hours_mean_is_left_out():
    result = vn_aqi_hourly({"pm25": [20.0, 20.0], "no2": [None, 900.0]})
    assert set(result.sub_indices) == {"pm25"}


def test_dominant_on_a_tie_is_the_particulate():
    # PM10 50 → 50 and NO2 100 → 50.
    result = vn_aqi_hourly({"no2": [100.0], "pm10": [50.0, 50.0]})
    assert (result.value, result.dominant) == (50, "pm10")


def test_unknown_pollutant_is_refused():
    with pytest.raises(ValueError, match="unknown pollutant"):
        vn_aqi_hourly({"pm25": [10.0, 10.0], "nox": [5.0]})


# ---- bands ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "key"),
    [
        (0, "tot"), (50, "tot"), (50.4, "tot"), (50.5, "trung_binh"), (51, "trung_binh"), (100, "trung_binh"),
        (101, "kem"), (150, "kem"), (151, "xau"), (200, "xau"), (201, "rat_xau"), (300, "rat_xau"),
        (301, "nguy_hai"), (500, "nguy_hai"), (750, "nguy_hai"),
    ],
)  # fmt: skip
def test_band_boundaries(value, key):
    assert aqi_band(value).key == key


def test_bands_carry_the_published_names_and_colours():
    published = {
        "tot": ("Tốt", "Good", (0, 228, 0)),
        "trung_binh": ("Trung bình", "Moderate", (255, 255, 0)),
        "kem": ("Kém", "Poor", (255, 126, 0)),
        "xau": ("Xấu", "Bad", (255, 0, 0)),
        "rat_xau": ("Rất xấu", "Very bad", (143, 63, 151)),
        "nguy_hai": ("Nguy hại", "Hazardous", (126, 0, 35)),
    }
    assert {band.key: (band.name_vi, band.name_en, band.rgb) for band in VN_AQI_BANDS} == published
    assert all(band.guidance_vi and band.guidance_en and band.colour for band in VN_AQI_BANDS)


def test_negative_index_has_no_band():
    with pytest.raises(ValueError):
        aqi_band(-1)


# ---- US EPA AQI -------------------------------------------------------------------------------------------
def ug_m3(pollutant: str, ppb: float) -> float:
    """ppb → µg/m³ at 25 °C with the molar masses (g/mol) of NO2, SO2, O3, CO."""
    molar_mass = {"no2": 46.0055, "so2": 64.066, "o3": 47.997, "co": 28.010}[pollutant]
    return ppb * molar_mass / 24.45


def test_conversion_factors_at_25_c_match_the_reference():
    # 1 ppb NO2 = 1.88 µg/m³, SO2 2.62, O3 1.96; 1 ppm CO = 1.145 mg/m³.
    assert to_us_unit("no2", 1.88) == pytest.approx(1.0, abs=0.001)
    assert to_us_unit("so2", 2.62) == pytest.approx(1.0, abs=0.001)
    assert to_us_unit("o3", 1960) == pytest.approx(1.0, abs=0.002)  # ppm
    assert to_us_unit("co", 1145) == pytest.approx(1.0, abs=0.001)  # ppm
    assert to_us_unit("pm25", 12.3) == 12.3


@pytest.mark.parametrize(
    ("pollutant", "value", "expected"),
    [("o3", 0.0709, 0.070), ("pm25", 35.49, 35.4), ("pm10", 54.9, 54), ("co", 9.49, 9.4), ("no2", 100.9, 100),
     ("so2", 75.99, 75), ("no2", 99.99999999999999, 100)],
)  # fmt: skip
def test_truncation(pollutant, value, expected):
    assert truncate_us(pollutant, value) == expected


@pytest.mark.parametrize(
    ("pollutant", "averaging", "concentration", "aqi"),
    [
        ("pm25", "24h", 9.0, 50), ("pm25", "24h", 9.05, 50), ("pm25", "24h", 9.1, 51),
        ("pm25", "24h", 35.4, 100), ("pm25", "24h", 35.5, 101), ("pm25", "24h", 55.5, 151),
        ("pm25", "24h", 125.5, 201), ("pm25", "24h", 225.5, 301), ("pm25", "24h", 325.4, 500),
        ("pm10", "24h", 54.9, 50), ("pm10", "24h", 55, 51), ("pm10", "24h", 604, 500),
        ("no2", "1h", ug_m3("no2", 100), 100), ("no2", "1h", ug_m3("no2", 101), 101),
        ("so2", "1h", ug_m3("so2", 75), 100), ("so2", "1h", ug_m3("so2", 304), 200),
        ("co", "8h", ug_m3("co", 9400), 100), ("co", "8h", ug_m3("co", 9500), 101),
        ("o3", "8h", ug_m3("o3", 70), 100), ("o3", "8h", ug_m3("o3", 71), 101),
        ("o3", "8h", ug_m3("o3", 200), 300), ("o3", "1h", ug_m3("o3", 125), 101),
        ("o3", "1h", ug_m3("o3", 604), 500),
    ],
)  # fmt: skip
def test_us_breakpoints(pollutant, averaging, concentration, aqi):
    assert round_half_up(us_sub_index(pollutant, concentration, averaging)) == aqi


def test_us_linear_by_hand():
    # PM2.5 12.0: (100 − 51)/(35.4 − 9.1)·(12.0 − 9.1) + 51 = 56.40 → 56.
    assert us_sub_index("pm25", 12.0, "24h") == pytest.approx(49 / 26.3 * 2.9 + 51)
    assert us_aqi({"pm25_24h": 12.0}).value == 56


@pytest.mark.parametrize(
    ("pollutant", "averaging", "ppb"),
    [("o3", "1h", 124), ("o3", "8h", 201), ("so2", "1h", 305), ("so2", "24h", 304)],
)
def test_us_blank_table_places(pollutant, averaging, ppb):
    assert us_sub_index(pollutant, ug_m3(pollutant, ppb), averaging) is None


def test_us_o3_takes_the_larger_of_8h_and_1h():
    result = us_aqi({"o3_8h": ug_m3("o3", 60), "o3_1h": ug_m3("o3", 170)})
    assert result.sub_indices["o3"] == pytest.approx((200 - 151) / (0.204 - 0.165) * (0.170 - 0.165) + 151)
    result = us_aqi({"o3_8h": ug_m3("o3", 60), "o3_1h": ug_m3("o3", 100)})  # 1h below 0.125 ppm: 8h only
    assert result.sub_indices["o3"] == pytest.approx((100 - 51) / (0.070 - 0.055) * (0.060 - 0.055) + 51)


def test_us_so2_above_the_1h_table():
    assert us_aqi({"so2_1h": ug_m3("so2", 400)}).value == 200
    assert us_aqi({"so2_1h": ug_m3("so2", 400), "so2_24h": ug_m3("so2", 605)}).value == 301
    assert us_aqi({"so2_1h": ug_m3("so2", 400), "so2_24h": ug_m3("so2", 100)}).value == 200


def test_us_result():
    result = us_aqi({"pm25_24h": 40.0, "no2_1h": ug_m3("no2", 60), "co_8h": None})
    assert result.method == "US_AQI"
    assert result.dominant == "pm25"
    assert (result.value, result.band.key, result.band.name_en) == (
        112,
        "unhealthy_for_sensitive_groups",
        "Unhealthy for Sensitive Groups",
    )
    assert us_aqi({"co_8h": None}) is None
    with pytest.raises(ValueError, match="unknown input"):
        us_aqi({"pm25": 10.0})


@pytest.mark.parametrize(
    ("value", "key"),
    [(50, "good"), (51, "moderate"), (100, "moderate"), (101, "unhealthy_for_sensitive_groups"),
     (150, "unhealthy_for_sensitive_groups"), (151, "unhealthy"), (200, "unhealthy"), (201, "very_unhealthy"),
     (300, "very_unhealthy"), (301, "hazardous"), (500, "hazardous")],
)  # fmt: skip
def test_us_categories(value, key):
    assert us_aqi_category(value).key == key
