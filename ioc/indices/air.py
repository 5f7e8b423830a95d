"""Air quality indices: VN_AQI (Decision 1459/QĐ-TCMT, 2019) and, beside it, the US EPA AQI (2024 table).

All concentrations come in µg/m³ (CO too), as the air feed carries them; pollutant names are the feed's
field names: ``pm25``, ``pm10``, ``o3``, ``no2``, ``so2``, ``co``.

VN_AQI choices, where the decision leaves room:

- Rounding: the final index is rounded half up (``ioc.indices.rounding.round_half_up``): 59.35 → 59,
  65.4 → 65, 109.5 → 110. The decision's hourly example prints 60 for a maximum sub-index of 59.35, which
  no rounding rule gives (its daily example rounds 65.4 to 65); we take the printed 60 as a slip. Sub-indices
  are kept unrounded; rounding the maximum equals the maximum of the rounded sub-indices.
- NowCast: the decision's formulas as written, including Σ 0.5^i·c_i (not renormalised) when w ≤ 0.5;
  a missing hour has weight 0; valid with at least 2 of c1..c3. All-zero hours give 0.
- Above the top breakpoint the last segment is extended, so an index above 500 can occur (band
  ``nguy_hai``); an O3 8-hour mean above 400 µg/m³ has no sub-index (the decision uses the 1-hour one).
- Daily index: the day is the 24 hourly means labelled 01:00 … 24:00 local (each label ends its hour).
  A 24-hour PM mean needs 18 of 24 hours and an 8-hour O3 mean 6 of 8 (the usual 75 % rule; the decision
  does not say); the 8-hour means are the 17 windows inside the day. SO2, NO2, CO and O3 1h take the
  highest available hour.
- Dominant pollutant on a tie: the first in ``POLLUTANTS`` (PM first).

US AQI: inputs are converted to ppb/ppm at 25 °C (µg/m³ = ppb × M / 24.45), truncated as EPA says, then
looked up; O3 takes the larger of its 8-hour and 1-hour sub-indices (1-hour only from 0.125 ppm); SO2 1-hour
above 304 ppb is indexed from the 24-hour mean when that is 305 ppb or more, else reported as 200.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from ioc.indices.rounding import round_half_up

Averaging = Literal["1h", "8h", "24h"]

# Also the tie-break order for the dominant pollutant.
POLLUTANTS = ("pm25", "pm10", "o3", "no2", "so2", "co")
PARTICULATES = frozenset({"pm25", "pm10"})
_POLLUTANT_NAMES = frozenset(POLLUTANTS)
_RANK = {pollutant: rank for rank, pollutant in enumerate(POLLUTANTS)}

# ---- VN_AQI tables (Decision 1459/QĐ-TCMT), µg/m³ -------------------------------------------------------
VN_AQI_LEVELS = (0, 50, 100, 150, 200, 300, 400, 500)
_PM25 = (0, 25, 50, 80, 150, 250, 350, 500)
_PM10 = (0, 50, 150, 250, 350, 420, 500, 600)
VN_AQI_BREAKPOINTS: dict[str, dict[str, tuple[float, ...]]] = {
    "o3": {"1h": (0, 160, 200, 300, 400, 800, 1000, 1200), "8h": (0, 100, 120, 170, 210, 400)},
    "co": {"1h": (0, 10_000, 30_000, 45_000, 60_000, 90_000, 120_000, 150_000)},
    "so2": {"1h": (0, 125, 350, 550, 800, 1600, 2100, 2630)},
    "no2": {"1h": (0, 100, 200, 700, 1200, 2350, 3100, 3850)},
    # One column per particulate: the hourly index puts the NowCast in it, the daily one the 24-hour mean.
    "pm10": {"1h": _PM10, "24h": _PM10},
    "pm25": {"1h": _PM25, "24h": _PM25},
}

NOWCAST_HOURS = 12
# A sub-index in its first segment is at most 50, to within rounding.
_FIRST_LEVEL_BOUND = VN_AQI_LEVELS[1] * (1 + 1e-9)
# The 1-hour column of each pollutant, in POLLUTANTS order.
_HOURLY = {pollutant: VN_AQI_BREAKPOINTS[pollutant]["1h"] for pollutant in POLLUTANTS}
HOURS_PER_DAY = 24
MIN_HOURS_24H_MEAN = 18
O3_WINDOW_HOURS = 8
MIN_HOURS_8H_MEAN = 6


@dataclass(frozen=True)
class Band:
    """A category of an air quality index, as published beside the value."""

    key: str
    name_vi: str
    name_en: str
    colour: str
    rgb: tuple[int, int, int]
    lowest: int
    highest: int | None  # None: no upper end
    guidance_vi: str
    guidance_en: str


@dataclass(frozen=True)
class AqiResult:
    value: int
    dominant: str
    sub_indices: dict[str, float]
    band: Band
    method: str = "VN_AQI"


VN_AQI_BANDS: tuple[Band, ...] = (
    Band("tot", "Tốt", "Good", "green", (0, 228, 0), 0, 50,
         "Tự do thực hiện các hoạt động ngoài trời.",
         "Air quality is good: outdoor activities as usual."),
    Band("trung_binh", "Trung bình", "Moderate", "yellow", (255, 255, 0), 51, 100,
         "Người nhạy cảm (người cao tuổi, trẻ em, người mắc bệnh tim hoặc phổi) có thể bị ảnh hưởng.",
         "Sensitive people (the elderly, children, people with heart or lung disease) may feel effects."),
    Band("kem", "Kém", "Poor", "orange", (255, 126, 0), 101, 150,
         "Nhóm nhạy cảm bị ảnh hưởng sức khỏe: giảm các hoạt động gắng sức ngoài trời.",
         "Sensitive groups are affected: reduce strenuous outdoor activity."),
    Band("xau", "Xấu", "Bad", "red", (255, 0, 0), 151, 200,
         "Mọi người bắt đầu bị ảnh hưởng sức khỏe; nhóm nhạy cảm nên ở trong nhà.",
         "Everyone begins to be affected; sensitive groups should stay indoors."),
    Band("rat_xau", "Rất xấu", "Very bad", "purple", (143, 63, 151), 201, 300,
         "Cảnh báo sức khỏe: mọi người hạn chế hoạt động ngoài trời.",
         "Health warning: everyone should limit outdoor activity."),
    Band("nguy_hai", "Nguy hại", "Hazardous", "maroon", (126, 0, 35), 301, None,
         "Khẩn cấp: mọi người ở trong nhà, đóng cửa ra vào và cửa sổ.",
         "Emergency: everyone should stay indoors with doors and windows closed."),
)  # fmt: skip


def _check_concentration(what: str, concentration: float) -> None:
    if math.isnan(concentration) or concentration < 0:
        raise ValueError(f"{what}: concentration must be a number ≥ 0, got {concentration}")


def _piecewise_linear(value: float, breakpoints: Sequence[float], levels: Sequence[float]) -> float:
    # Continuous segments; beyond the last breakpoint the last segment goes on. The segment: the first
    # breakpoint (after the first) at or above the value, else the last.
    upper = bisect_left(breakpoints, value, 1, len(breakpoints) - 1)
    lo, hi = breakpoints[upper - 1], breakpoints[upper]
    i_lo, i_hi = levels[upper - 1], levels[upper]
    return (i_hi - i_lo) / (hi - lo) * (value - lo) + i_lo


def sub_index(pollutant: str, concentration: float, averaging: Averaging = "1h") -> float:
    """VN_AQI sub-index of one pollutant (unrounded), concentration in µg/m³.

    ``averaging`` picks the table column: ``"1h"`` for gases and for a particulate's NowCast, ``"8h"`` for
    O3's 8-hour mean, ``"24h"`` for a particulate's 24-hour mean.
    """
    columns = VN_AQI_BREAKPOINTS.get(pollutant)
    if columns is None:
        raise ValueError(f"unknown pollutant {pollutant!r}: use one of {', '.join(POLLUTANTS)}")
    breakpoints = columns.get(averaging)
    if breakpoints is None:
        raise ValueError(f"VN_AQI has no {averaging} column for {pollutant}: use {' or '.join(columns)}")
    _check_concentration(pollutant, concentration)
    if pollutant == "o3" and averaging == "8h" and concentration > breakpoints[-1]:
        raise ValueError("an O3 8-hour mean above 400 µg/m³ has no sub-index: use the 1-hour one")
    return _piecewise_linear(concentration, breakpoints, VN_AQI_LEVELS)


def nowcast(hourly_means: Sequence[float | None]) -> float | None:
    """NowCast of a particulate from hourly means, newest first (c1 = this hour), up to 12 used.

    None when fewer than 2 of c1, c2, c3 are present.
    """
    if not hourly_means:
        return None
    return nowcast_with(hourly_means[0], NowcastHistory.of(hourly_means[1:NOWCAST_HOURS]))


class NowcastHistory:
    """The hours before this one as the NowCast reads them (c2 … c12): the same for every reading of an
    hour, so what they give is worked out once. The formulas' sums run over the hours with data in age
    order, as written, so the float result does not depend on how it is computed."""

    __slots__ = ("ages", "values", "recent", "highest", "lowest", "halves", "weight", "products",
                 "powers", "older_weighted", "older_normaliser", "with_current_normaliser")  # fmt: skip

    def __init__(self, older: Sequence[float | None]) -> None:
        present = [
            (age, value) for age, value in enumerate(older[: NOWCAST_HOURS - 1], start=1) if value is not None
        ]
        self.ages = [age for age, _ in present]
        self.values = [value for _, value in present]
        for value in self.values:
            if not value >= 0:  # negative or NaN
                _check_concentration("NowCast", value)
        self.recent = sum(1 for age in self.ages if age < 3)  # of c2 and c3
        self.highest = max(self.values, default=None)
        self.lowest = min(self.values, default=None)
        self.halves = [_HALF_POWERS[age] * value for age, value in present]
        # With this hour's mean between the lowest and the highest of these, the weight is theirs.
        self.weight = self.lowest / self.highest if self.highest else None
        if self.weight is not None and self.weight > 0.5:
            self.powers = [self.weight**age for age in self.ages]
            self.products = [power * value for power, value in zip(self.powers, self.values, strict=True)]
            self.older_weighted, self.older_normaliser = sum(self.products), sum(self.powers)
            self.with_current_normaliser = sum([1.0, *self.powers])  # weight⁰ for this hour

    @classmethod
    def of(cls, older: Sequence[float | None]) -> NowcastHistory:
        return cls(older)


def nowcast_with(current: float | None, history: NowcastHistory) -> float | None:
    """NowCast from this hour's mean so far (c1) and the hours before it."""
    if (current is not None) + history.recent < 2:
        return None
    if current is None:
        highest, lowest = history.highest, history.lowest
    else:
        if not current >= 0:
            _check_concentration("NowCast", current)
        highest = current if history.highest is None or current > history.highest else history.highest
        lowest = current if history.lowest is None or current < history.lowest else history.lowest
    assert highest is not None and lowest is not None  # two of c1, c2, c3 are present
    if highest == 0:
        return 0.0
    weight = lowest / highest
    if weight <= 0.5:
        return sum(history.halves if current is None else [_HALF_POWERS[0] * current, *history.halves])
    if highest is history.highest and lowest is history.lowest:  # the older hours' weight: worked out
        if current is None:
            return history.older_weighted / history.older_normaliser
        return sum([current, *history.products]) / history.with_current_normaliser
    ages = history.ages if current is None else [0, *history.ages]
    values = history.values if current is None else [current, *history.values]
    powers = [weight**age for age in ages]
    return sum([power * value for power, value in zip(powers, values, strict=True)]) / sum(powers)


_HALF_POWERS = tuple(0.5**hour for hour in range(1, NOWCAST_HOURS + 1))  # 0.5^i for c_i, i from 1


def aqi_band(value: float) -> Band:
    """The VN_AQI band of an index value (rounded half up first)."""
    return _band_of(value, VN_AQI_BANDS)


def _band_of(value: float, bands: Sequence[Band]) -> Band:
    index = round_half_up(value)
    if index < 0:
        raise ValueError(f"an air quality index is ≥ 0, got {value}")
    for band in bands:
        if band.highest is None or index <= band.highest:
            return band
    raise ValueError(f"no band holds {index}: the last band has no upper end")


def _check_pollutants(names: Mapping[str, object]) -> None:
    unknown = names.keys() - _POLLUTANT_NAMES
    if unknown:
        raise ValueError(f"unknown pollutant(s) {', '.join(sorted(unknown))}: use {', '.join(POLLUTANTS)}")


def _vn_result(sub_indices: dict[str, float]) -> AqiResult | None:
    # A station needs PM10 or PM2.5 to publish an AQI.
    if "pm25" not in sub_indices and "pm10" not in sub_indices:
        return None
    dominant, highest = "", -math.inf  # the highest sub-index; on a tie the first in POLLUTANTS
    for pollutant, sub in sub_indices.items():
        if sub > highest or (sub == highest and _RANK[pollutant] < _RANK[dominant]):
            dominant, highest = pollutant, sub
    value = round_half_up(highest)
    return AqiResult(value=value, dominant=dominant, sub_indices=sub_indices, band=aqi_band(value))


def vn_aqi_hourly(hourly_means: Mapping[str, Sequence[float | None]]) -> AqiResult | None:
    """Hourly VN_AQI from each pollutant's hourly means in µg/m³, newest first.

    Gases use this hour's mean (c1, O3 in the 1-hour column); PM10 and PM2.5 the NowCast of up to 12 hours.
    None when neither PM10 nor PM2.5 gives a value.
    """
    _check_pollutants(hourly_means)
    concentrations = {
        pollutant: nowcast(series) if pollutant in PARTICULATES else series[0]
        for pollutant, series in hourly_means.items()
        if series
    }
    return vn_aqi_of_hour(concentrations)


def vn_aqi_hourly_index(concentrations: Mapping[str, float | None]) -> tuple[int, Band] | None:
    """The hourly VN_AQI and its band from each pollutant's hourly concentration (``vn_aqi_of_hour``
    without the breakdown by pollutant): what a station's live index shows, every reading."""
    highest, particulate = -math.inf, False
    for pollutant, breakpoints in _HOURLY.items():  # particulates first
        if (concentration := concentrations.get(pollutant)) is not None:
            if not concentration >= 0:  # negative or NaN
                _check_concentration(pollutant, concentration)
            if particulate and concentration <= breakpoints[1] and highest >= _FIRST_LEVEL_BOUND:
                continue  # in its first segment a sub-index is at most 50: not the highest
            sub = _piecewise_linear(concentration, breakpoints, VN_AQI_LEVELS)
            highest = sub if sub > highest else highest
            particulate = particulate or pollutant in PARTICULATES
    if not particulate:  # a station needs PM10 or PM2.5 to publish an AQI
        return None
    value = round_half_up(highest)
    return value, aqi_band(value)


def vn_aqi_of_hour(concentrations: Mapping[str, float | None]) -> AqiResult | None:
    """Hourly VN_AQI from each pollutant's hourly concentration in µg/m³: the NowCast for PM10 and PM2.5,
    this hour's mean for the gases (``vn_aqi_hourly``). None when neither PM10 nor PM2.5 gives a value."""
    sub_indices: dict[str, float] = {}
    for pollutant in POLLUTANTS:
        if (concentration := concentrations.get(pollutant)) is not None:
            if not concentration >= 0:  # negative or NaN
                _check_concentration(pollutant, concentration)
            sub_indices[pollutant] = _piecewise_linear(concentration, _HOURLY[pollutant], VN_AQI_LEVELS)
    return _vn_result(sub_indices)


def mean_of_present(
    hourly_means: Sequence[float | None], min_hours: int = MIN_HOURS_24H_MEAN
) -> float | None:
    """Mean of the present hours, None with fewer than ``min_hours`` of them."""
    present = [value for value in hourly_means if value is not None]
    return sum(present) / len(present) if len(present) >= min_hours else None


def highest_rolling_mean(
    hourly_means: Sequence[float | None],
    window: int = O3_WINDOW_HOURS,
    min_hours: int = MIN_HOURS_8H_MEAN,
) -> float | None:
    """Highest mean over ``window`` consecutive hours inside the sequence (time order), each window
    needing ``min_hours`` present; None when no window qualifies."""
    means = (
        mean_of_present(hourly_means[end - window : end], min_hours)
        for end in range(window, len(hourly_means) + 1)
    )
    valid = [mean for mean in means if mean is not None]
    return max(valid) if valid else None


def o3_daily_sub_index(highest_1h: float | None, highest_8h: float | None) -> float | None:
    """Daily O3 sub-index: the larger of the 1-hour-maximum and 8-hour-maximum sub-indices; an 8-hour
    maximum above 400 µg/m³ is left out (the decision then uses the 1-hour one only)."""
    candidates = []
    if highest_1h is not None:
        candidates.append(sub_index("o3", highest_1h, "1h"))
    if highest_8h is not None and highest_8h <= VN_AQI_BREAKPOINTS["o3"]["8h"][-1]:
        candidates.append(sub_index("o3", highest_8h, "8h"))
    return max(candidates) if candidates else None


def vn_aqi_daily(day_hourly_means: Mapping[str, Sequence[float | None]]) -> AqiResult | None:
    """Daily VN_AQI from one local day's hourly means in µg/m³, 24 per pollutant in time order (the hours
    labelled 01:00 … 24:00; None for a missing hour).

    PM: 24-hour mean (18 hours needed); SO2, NO2, CO: highest hour; O3: ``o3_daily_sub_index``.
    None when neither PM10 nor PM2.5 gives a value.
    """
    _check_pollutants(day_hourly_means)
    sub_indices: dict[str, float] = {}
    for pollutant in POLLUTANTS:
        series = day_hourly_means.get(pollutant)
        if series is None:
            continue
        if len(series) != HOURS_PER_DAY:
            raise ValueError(f"{pollutant}: a day has 24 hourly means (None when missing), got {len(series)}")
        present = [value for value in series if value is not None]
        if pollutant in PARTICULATES:
            mean = mean_of_present(series)
            sub = sub_index(pollutant, mean, "24h") if mean is not None else None
        elif pollutant == "o3":
            sub = o3_daily_sub_index(max(present, default=None), highest_rolling_mean(series))
        else:
            sub = sub_index(pollutant, max(present), "1h") if present else None
        if sub is not None:
            sub_indices[pollutant] = sub
    return _vn_result(sub_indices)


# ---- US EPA AQI (Technical Assistance Document, 2024 revision) -----------------------------------------
MOLAR_VOLUME_25C_L = 24.45
MOLAR_MASS_G_MOL = {"no2": 46.0055, "so2": 64.066, "o3": 47.997, "co": 28.010}
# The unit EPA's table uses and the decimals it keeps (truncating) for each pollutant.
US_UNITS: dict[str, tuple[str, int]] = {
    "o3": ("ppm", 3),
    "pm25": ("µg/m³", 1),
    "pm10": ("µg/m³", 0),
    "co": ("ppm", 1),
    "so2": ("ppb", 0),
    "no2": ("ppb", 0),
}
# (pollutant, averaging) → segments (C_lo, C_hi, I_lo, I_hi) in the unit above.
US_AQI_BREAKPOINTS: dict[tuple[str, str], tuple[tuple[float, float, int, int], ...]] = {
    ("o3", "8h"): ((0.000, 0.054, 0, 50), (0.055, 0.070, 51, 100), (0.071, 0.085, 101, 150),
                   (0.086, 0.105, 151, 200), (0.106, 0.200, 201, 300)),
    ("o3", "1h"): ((0.125, 0.164, 101, 150), (0.165, 0.204, 151, 200), (0.205, 0.404, 201, 300),
                   (0.405, 0.604, 301, 500)),
    ("pm25", "24h"): ((0.0, 9.0, 0, 50), (9.1, 35.4, 51, 100), (35.5, 55.4, 101, 150),
                      (55.5, 125.4, 151, 200), (125.5, 225.4, 201, 300), (225.5, 325.4, 301, 500)),
    ("pm10", "24h"): ((0, 54, 0, 50), (55, 154, 51, 100), (155, 254, 101, 150), (255, 354, 151, 200),
                      (355, 424, 201, 300), (425, 604, 301, 500)),
    ("co", "8h"): ((0.0, 4.4, 0, 50), (4.5, 9.4, 51, 100), (9.5, 12.4, 101, 150), (12.5, 15.4, 151, 200),
                   (15.5, 30.4, 201, 300), (30.5, 50.4, 301, 500)),
    ("so2", "1h"): ((0, 35, 0, 50), (36, 75, 51, 100), (76, 185, 101, 150), (186, 304, 151, 200)),
    ("so2", "24h"): ((305, 604, 201, 300), (605, 1004, 301, 500)),
    ("no2", "1h"): ((0, 53, 0, 50), (54, 100, 51, 100), (101, 360, 101, 150), (361, 649, 151, 200),
                    (650, 1249, 201, 300), (1250, 2049, 301, 500)),
}  # fmt: skip
# Above these tables EPA switches to another averaging rather than extending the scale.
_US_NO_EXTENSION = frozenset({("o3", "8h"), ("so2", "1h")})
US_SO2_1H_CEILING_AQI = 200

US_AQI_BANDS: tuple[Band, ...] = (
    Band("good", "Tốt", "Good", "green", (0, 228, 0), 0, 50,
         "Chất lượng không khí tốt, ít hoặc không có rủi ro.",
         "Air quality is satisfactory, with little or no risk."),
    Band("moderate", "Trung bình", "Moderate", "yellow", (255, 255, 0), 51, 100,
         "Người đặc biệt nhạy cảm nên cân nhắc giảm gắng sức kéo dài ngoài trời.",
         "Unusually sensitive people should consider reducing prolonged or heavy exertion outdoors."),
    Band("unhealthy_for_sensitive_groups", "Không tốt cho nhóm nhạy cảm", "Unhealthy for Sensitive Groups",
         "orange", (255, 126, 0), 101, 150,
         "Nhóm nhạy cảm nên giảm gắng sức kéo dài hoặc nặng ngoài trời.",
         "Sensitive groups should reduce prolonged or heavy exertion outdoors."),
    Band("unhealthy", "Không tốt cho sức khỏe", "Unhealthy", "red", (255, 0, 0), 151, 200,
         "Mọi người có thể bị ảnh hưởng; nhóm nhạy cảm nên tránh gắng sức kéo dài ngoài trời.",
         "Everyone may feel effects; sensitive groups should avoid prolonged or heavy exertion outdoors."),
    Band("very_unhealthy", "Rất không tốt cho sức khỏe", "Very Unhealthy", "purple", (143, 63, 151), 201, 300,
         "Cảnh báo sức khỏe: mọi người nên tránh gắng sức kéo dài ngoài trời.",
         "Health alert: everyone should avoid prolonged or heavy exertion outdoors."),
    Band("hazardous", "Nguy hại", "Hazardous", "maroon", (126, 0, 35), 301, None,
         "Tình trạng khẩn cấp: mọi người tránh mọi hoạt động ngoài trời.",
         "Emergency conditions: everyone should avoid all outdoor exertion."),
)  # fmt: skip


def us_aqi_category(value: float) -> Band:
    """The US EPA AQI category of an index value (rounded half up first)."""
    return _band_of(value, US_AQI_BANDS)


def to_us_unit(pollutant: str, concentration_ug_m3: float) -> float:
    """µg/m³ → the unit of EPA's table at 25 °C: ppm for O3 and CO, ppb for SO2 and NO2, µg/m³ for PM."""
    unit, _ = US_UNITS[pollutant]
    if unit == "µg/m³":
        return concentration_ug_m3
    ppb = concentration_ug_m3 * MOLAR_VOLUME_25C_L / MOLAR_MASS_G_MOL[pollutant]
    return ppb / 1000 if unit == "ppm" else ppb


def truncate_us(pollutant: str, concentration: float) -> float:
    """Truncate (not round) to EPA's decimals: O3 ppm 3, PM2.5 1, PM10 0, CO ppm 1, SO2 and NO2 ppb 0."""
    _, decimals = US_UNITS[pollutant]
    # Absorb float noise (0.07 × 1000 = 70.00000000000001) before cutting digits.
    exact = Decimal(repr(round(concentration, 9)))
    return float(exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN))


def us_sub_index(pollutant: str, concentration_ug_m3: float, averaging: str) -> float | None:
    """US AQI sub-index (unrounded) of a concentration in µg/m³, None where EPA's table is blank: O3 1-hour
    below 0.125 ppm, O3 8-hour above 0.200 ppm, SO2 1-hour above 304 ppb, SO2 24-hour below 305 ppb."""
    segments = US_AQI_BREAKPOINTS.get((pollutant, averaging))
    if segments is None:
        known = ", ".join(f"{p} {a}" for p, a in US_AQI_BREAKPOINTS)
        raise ValueError(f"US AQI has no {averaging} table for {pollutant}: use one of {known}")
    _check_concentration(pollutant, concentration_ug_m3)
    value = truncate_us(pollutant, to_us_unit(pollutant, concentration_ug_m3))
    if value < segments[0][0]:
        return None
    if value > segments[-1][1] and (pollutant, averaging) in _US_NO_EXTENSION:
        return None
    # Truncation puts every value inside a segment (the gaps are one step wide); the last one extends.
    c_lo, c_hi, i_lo, i_hi = next((segment for segment in segments if value <= segment[1]), segments[-1])
    return (i_hi - i_lo) / (c_hi - c_lo) * (value - c_lo) + i_lo


US_AQI_INPUTS = ("pm25_24h", "pm10_24h", "o3_8h", "o3_1h", "co_8h", "so2_1h", "so2_24h", "no2_1h")


def _us_so2(so2_1h: float | None, so2_24h: float | None) -> float | None:
    from_1h = us_sub_index("so2", so2_1h, "1h") if so2_1h is not None else None
    if from_1h is not None:
        return from_1h
    from_24h = us_sub_index("so2", so2_24h, "24h") if so2_24h is not None else None
    if from_24h is not None:
        return from_24h
    # A 1-hour value above the 1-hour table without a high 24-hour mean: the top of the 1-hour scale.
    return float(US_SO2_1H_CEILING_AQI) if so2_1h is not None else None


def us_aqi(concentrations: Mapping[str, float | None]) -> AqiResult | None:
    """US EPA AQI from averaged concentrations in µg/m³, keyed by pollutant and averaging period
    (``US_AQI_INPUTS``: pm25_24h, pm10_24h, o3_8h, o3_1h, co_8h, so2_1h, so2_24h, no2_1h).

    Sub-indices are keyed by pollutant; None when no pollutant gives one.
    """
    unknown = set(concentrations) - set(US_AQI_INPUTS)
    if unknown:
        raise ValueError(f"unknown input(s) {', '.join(sorted(unknown))}: use {', '.join(US_AQI_INPUTS)}")

    def sub(key: str) -> float | None:
        value = concentrations.get(key)
        pollutant, averaging = key.split("_")
        return us_sub_index(pollutant, value, averaging) if value is not None else None

    o3 = [value for value in (sub("o3_8h"), sub("o3_1h")) if value is not None]
    candidates = {
        "pm25": sub("pm25_24h"),
        "pm10": sub("pm10_24h"),
        "o3": max(o3) if o3 else None,
        "no2": sub("no2_1h"),
        "so2": _us_so2(concentrations.get("so2_1h"), concentrations.get("so2_24h")),
        "co": sub("co_8h"),
    }
    sub_indices = {pollutant: value for pollutant, value in candidates.items() if value is not None}
    if not sub_indices:
        return None
    dominant = max(sub_indices, key=lambda pollutant: (sub_indices[pollutant], -POLLUTANTS.index(pollutant)))
    value = round_half_up(sub_indices[dominant])
    return AqiResult(value, dominant, sub_indices, us_aqi_category(value), method="US_AQI")
