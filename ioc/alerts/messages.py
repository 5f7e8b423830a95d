"""Bilingual (vi, en) titles and texts of alerts and incidents: what, where, how bad, since when,
compared with what.

    en: Bad air quality at Kim Liên (Đống Đa): VN_AQI 172 (Xấu / Bad), above 150 since 14:05 23/11.
    vi: Chất lượng không khí Xấu tại Kim Liên (Đống Đa): VN_AQI 172 (Xấu), vượt ngưỡng 150 từ 14:05
        ngày 23/11.

Places keep their Vietnamese names (with diacritics) in both languages. Numbers follow each language:
``1.8 mg/L`` in English, ``1,8 mg/L`` in Vietnamese. Ratios (unit ``1``) read as a percentage below 1
(speed at ``18%`` of its normal) and as "times" from 1 up (``4.2 times`` the usual). Times are shown in the
city's time zone as ``HH:MM DD/MM``. The title names the rule and the place; for a VN_AQI rule it names
the worst band the episode reached instead of the rule's own (its peak: "Hazardous air quality" for a
VN_AQI of 498, not the trigger band's "Bad"), so it changes only when the band rises and the alert manager
publishes that update. The text carries the latest figures.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from ioc.alerts.rules import Rule, Text
from ioc.feeds import REGISTRY
from ioc.indices.air import aqi_band
from ioc.models.alert import Alert, IncidentMember
from ioc.models.anomaly import Severity

# Metric phrases: ``{value}`` is the value with its unit, already formatted for the language.
_METRICS: dict[str, tuple[str, str]] = {
    "vn_aqi": ("VN_AQI {value}", "VN_AQI {value}"),
    "us_aqi": ("US AQI {value}", "US AQI {value}"),
    "pm25": ("PM2.5 {value}", "PM2.5 {value}"),
    "pm10": ("PM10 {value}", "PM10 {value}"),
    "no2": ("NO2 {value}", "NO2 {value}"),
    "so2": ("SO2 {value}", "SO2 {value}"),
    "o3": ("O3 {value}", "O3 {value}"),
    "co": ("CO {value}", "CO {value}"),
    "vn_wqi": ("VN_WQI {value}", "VN_WQI {value}"),
    "dissolved_oxygen": ("oxy hoà tan {value}", "dissolved oxygen {value}"),
    "nh4_n": ("amoni (N-NH4) {value}", "ammonium (N-NH4) {value}"),
    "do_score": ("oxy hoà tan thấp bất thường, điểm {value}", "unusually low oxygen, anomaly score {value}"),
    "speed_score": ("tốc độ thấp bất thường, điểm {value}", "unusually low speed, anomaly score {value}"),
    "area_speed_ratio": (
        "tốc độ cả khu vực bằng {value} mức bình thường",
        "the area's speed at {value} of normal",
    ),
    "taps_score": (
        "lượt quẹt thẻ cao bất thường, điểm {value}",
        "unusually many taps, anomaly score {value}",
    ),
    "taps": ("{value} trong {window}", "{value} in {window}"),
    "silent_intervals": ("mất tín hiệu {value} liên tiếp", "no data for {value} in a row"),
    "identical_readings": ("{value} liên tiếp cùng một giá trị", "{value} in a row with the same value"),
    "identical_minutes": ("giữ nguyên một giá trị suốt {value}", "the same value for {value}"),
    "spike_ratio": ("một giá trị đo gấp {value} trung vị gần đây", "a reading at {value} the recent median"),
    "rejected_readings": ("{value} ngoài dải đo vật lý", "{value} outside the physical range"),
    "pm25_1h_score": ("PM2.5 trung bình giờ bất thường, điểm {value}", "hourly PM2.5 anomaly score {value}"),
}
# Anomaly scores of the general detector (0–1, 0.5: a surprise the series has not produced before): read
# as a plain number, and their baseline, the series' normal, in the unit of what was scored.
_SCORE_BASELINE_UNITS = {
    "speed_score": "km/h",
    "pm25_1h_score": "µg/m³",
    "do_score": "mg/L",
    "taps_score": "taps",
}
# QCVN 05 means, named by pollutant and hours: ``pm25_24h`` → "24-hour mean PM2.5 62 µg/m³".
_POLLUTANTS = {"pm25": "PM2.5", "pm10": "PM10", "no2": "NO2", "so2": "SO2", "co": "CO", "o3": "O3"}
_METRICS |= {
    f"{key}_{hours}h": (f"{name} trung bình {hours} giờ {{value}}", f"{hours}-hour mean {name} {{value}}")
    for key, name in _POLLUTANTS.items()
    for hours in (1, 8, 24)
}

# Count units: (vi, en singular, en plural).
_COUNT_UNITS: dict[str, tuple[str, str, str]] = {
    "intervals": ("chu kỳ báo cáo", "reporting interval", "reporting intervals"),
    "readings": ("lần đọc", "reading", "readings"),
    "taps": ("lượt quẹt thẻ", "tap", "taps"),
    "min": ("phút", "min", "min"),
}

_AQI_BANDS = {
    "tot": ("Tốt", "Good"),
    "trung_binh": ("Trung bình", "Moderate"),
    "kem": ("Kém", "Poor"),
    "xau": ("Xấu", "Bad"),
    "rat_xau": ("Rất xấu", "Very bad"),
    "nguy_hai": ("Nguy hại", "Hazardous"),
}
_WQI_BANDS = {
    "rat_tot": ("Rất tốt", "Very good"),
    "tot": ("Tốt", "Good"),
    "trung_binh": ("Trung bình", "Medium"),
    "xau": ("Xấu", "Poor"),
    "kem": ("Kém", "Bad"),
    "o_nhiem_rat_nang": ("Ô nhiễm rất nặng", "Very heavily polluted"),
}

# Index metrics whose alert names the band reached, as (vi, en) templates of the band's names.
_BAND_NAMES: dict[str, tuple[str, str]] = {"vn_aqi": ("Chất lượng không khí {vi}", "{en} air quality")}

_SEVERITIES = {
    Severity.info: ("thông tin", "info"),
    Severity.warning: ("cảnh báo", "warning"),
    Severity.critical: ("nghiêm trọng", "critical"),
}

VI, EN = "vi", "en"


def number(value: float, lang: str) -> str:
    """``1234.5`` → en ``1,234.5``, vi ``1.234,5``; fewer decimals for bigger numbers."""
    size = abs(value)
    decimals = 0 if size >= 100 else 1 if size >= 10 else 2
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    if lang == VI:
        text = text.translate(str.maketrans({",": ".", ".": ","}))
    return text


def _ratio(value: float, lang: str) -> str:
    if value < 1:
        return f"{number(value * 100, lang)}%"
    return f"{number(value, lang)} lần" if lang == VI else f"{number(value, lang)} times"


def quantity(value: float, unit: str, lang: str) -> str:
    """A value with its unit, as a reader of ``lang`` writes it."""
    if unit == "1":
        return _ratio(value, lang)
    if unit in _COUNT_UNITS:
        vi, singular, plural = _COUNT_UNITS[unit]
        word = vi if lang == VI else singular if value == 1 else plural
        return f"{number(value, lang)} {word}"
    return f"{number(value, lang)} {unit}" if unit else number(value, lang)


def window_label(window: str, lang: str) -> str:
    """``15m`` → ``15 phút`` / ``15 min``; ``1h`` → ``1 giờ`` / ``1 h``."""
    match = re.fullmatch(r"(\d+)([smhd])", window)
    if match is None:
        return window
    amount, unit = match.groups()
    words = {"s": ("giây", "s"), "m": ("phút", "min"), "h": ("giờ", "h"), "d": ("ngày", "d")}[unit]
    return f"{amount} {words[0] if lang == VI else words[1]}"


def local_time(moment: datetime, timezone: str, lang: str) -> str:
    """``14:05 23/11`` in the city's time zone (``14:05 ngày 23/11`` in Vietnamese)."""
    local = moment.astimezone(ZoneInfo(timezone))
    return local.strftime("%H:%M ngày %d/%m") if lang == VI else local.strftime("%H:%M %d/%m")


def _ascii_key(text: str) -> str:
    stripped = "".join(
        c
        for c in unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
        if unicodedata.category(c) != "Mn"
    )
    return re.sub(r"[\s\-]+", "_", stripped.strip().lower())


def band_names(metric: str, band: str) -> tuple[str, str]:
    """(vi, en) names of an index band given as a code (``rat_xau``) or its Vietnamese name."""
    table = _WQI_BANDS if metric.startswith("vn_wqi") else _AQI_BANDS
    return table.get(_ascii_key(band), (band, band))


def place(entity_name: str, district_name: str) -> str:
    """``Kim Liên (Đống Đa)``; the district is left out when the name already says it, and set off
    with a comma when the name has parentheses of its own."""
    if _ascii_key(district_name) in _ascii_key(entity_name):
        return entity_name
    if ")" in entity_name:
        return f"{entity_name}, {district_name}"
    return f"{entity_name} ({district_name})"


def rule_name(rule: Rule | None, rule_id: str) -> Text:
    return rule.name if rule is not None else Text(vi=rule_id, en=rule_id)


def peak_band(metric: str, peak: float | None) -> str | None:
    """The band code (``nguy_hai``) of an episode's peak, for a metric whose alerts name their band."""
    if metric not in _BAND_NAMES or peak is None:
        return None
    return aqi_band(peak).key


def alert_name(name: Text, metric: str, peak: float | None) -> Text:
    """The rule's name, or for a VN_AQI rule the name of the band its episode reached (``peak``)."""
    band = peak_band(metric, peak)
    if band is None:
        return name
    band_vi, band_en = band_names(metric, band)
    vi, en = _BAND_NAMES[metric]
    return Text(vi=vi.format(vi=band_vi), en=en.format(en=band_en))


def alert_title(name: Text, entity_name: str, district_name: str) -> Text:
    where = place(entity_name, district_name)
    return Text(vi=f"{name.vi} tại {where}", en=f"{name.en} at {where}")


def _measure(alert: Alert, value: float | None, lang: str) -> str:
    evidence = alert.evidence
    if value is None:
        return "không có số liệu" if lang == VI else "no reading"
    vi, en = _METRICS.get(evidence.metric, (f"{evidence.metric} {{value}}", f"{evidence.metric} {{value}}"))
    template = vi if lang == VI else en
    return template.format(value=_value(evidence.metric, value, evidence.unit, lang),
                           window=window_label(evidence.window, lang))  # fmt: skip


def _value(metric: str, value: float, unit: str, lang: str) -> str:
    return number(value, lang) if metric in _SCORE_BASELINE_UNITS else quantity(value, unit, lang)


def alert_text(alert: Alert, name: Text, rising: bool, timezone: str) -> Text:
    """What, where, how bad (latest value with unit and band), compared with what (threshold, normal),
    since when (episode start), and the episode's worst value when it differs from the latest."""
    evidence = alert.evidence
    where = place(alert.entity_name, alert.district_name)
    texts = {}
    for lang in (VI, EN):
        what = _measure(alert, evidence.value, lang)
        if evidence.band:
            band_vi, band_en = band_names(evidence.metric, evidence.band)
            what += f" ({band_vi})" if lang == VI else f" ({band_vi} / {band_en})"
        parts = [what]
        if evidence.threshold is not None:
            limit = _value(evidence.metric, evidence.threshold, evidence.unit, lang)
            if lang == VI:
                parts.append(f"{'vượt ngưỡng' if rising else 'dưới ngưỡng'} {limit}")
            else:
                parts.append(f"{'above' if rising else 'below'} {limit}")
        since = local_time(alert.episode_start, timezone, lang)
        sentence = f"{name.vi if lang == VI else name.en} {'tại' if lang == VI else 'at'} {where}: "
        sentence += ", ".join(parts) + (f" từ {since}." if lang == VI else f" since {since}.")
        if (
            evidence.baseline is not None
            and (unit := _SCORE_BASELINE_UNITS.get(evidence.metric, evidence.unit)) != "1"
        ):
            normal = quantity(evidence.baseline, unit, lang)
            sentence += f" Mức bình thường: {normal}." if lang == VI else f" Normal: {normal}."
        if alert.peak is not None and evidence.value is not None:
            peak, latest = (
                _value(evidence.metric, v, evidence.unit, lang) for v in (alert.peak, evidence.value)
            )
            if peak != latest:
                label = (
                    ("Cao nhất" if rising else "Thấp nhất")
                    if lang == VI
                    else ("Highest" if rising else "Lowest")
                )
                sentence += f" {label}: {_measure(alert, alert.peak, lang)}."
        texts[lang] = sentence
    return Text(**texts)


def incident_title(names: Sequence[Text], district_name: str) -> Text:
    """``Sự cố giao thông + Chất lượng không khí Xấu tại Đống Đa``."""
    return Text(
        vi=f"{' + '.join(n.vi for n in names)} tại {district_name}",
        en=f"{' + '.join(n.en for n in names)} in {district_name}",
    )


def incident_text(
    members: Sequence[IncidentMember], district_name: str, severity: Severity, timezone: str
) -> Text:
    """How many alerts, of which feeds, where, since when, and the worst severity."""
    feeds = list(dict.fromkeys(member.feed for member in members))
    places = ", ".join(dict.fromkeys(member.entity_name for member in members))
    start = min(member.episode_start for member in members)
    labels = [REGISTRY[feed].label if feed in REGISTRY else (feed, feed) for feed in feeds]
    feed_vi = ", ".join(vi for vi, _ in labels)
    feed_en = ", ".join(en for _, en in labels)
    count = len(members)
    return Text(
        vi=f"{count} cảnh báo ({feed_vi}) tại {district_name} từ {local_time(start, timezone, VI)}: "
        f"{places}. Mức cao nhất: {_SEVERITIES[severity][0]}.",
        en=f"{count} alert{'s' if count != 1 else ''} ({feed_en}) in {district_name} since "
        f"{local_time(start, timezone, EN)}: {places}. Highest severity: {_SEVERITIES[severity][1]}.",
    )
