"""Bilingual alert messages: what, where, how bad, since when, compared with what."""

from __future__ import annotations

import pytest

from ioc.alerts import manager, messages
from ioc.models.anomaly import Severity
from tests.unit.test_alert_manager import report, run

# T0 is 07:05 UTC; Hanoi (UTC+7) reads it as 14:05 on 23/11.
LOCAL_EN, LOCAL_VI = "since 14:05 23/11", "từ 14:05 ngày 23/11"


def opened(*anomalies):
    events = run(manager.new_state(), anomalies)
    return events[-1].alert


def test_air_quality_alert():
    alert = opened(report("air.aqi_band", "air-kim-lien", 0, 172, band="xau", threshold=150))
    assert alert.title.en == "Bad air quality at Kim Liên (Đống Đa)"
    assert alert.title.vi == "Chất lượng không khí Xấu tại Kim Liên (Đống Đa)"
    assert (
        alert.text.en
        == f"Bad air quality at Kim Liên (Đống Đa): VN_AQI 172 (Xấu / Bad), above 150 {LOCAL_EN}."
    )
    assert alert.text.vi == (
        f"Chất lượng không khí Xấu tại Kim Liên (Đống Đa): VN_AQI 172 (Xấu), vượt ngưỡng 150 {LOCAL_VI}."
    )


def test_the_text_follows_the_latest_value_and_names_the_peak():
    alert = opened(
        report("air.aqi_band", "air-nguyen-van-cu", 0, 172, band="xau"),
        report("air.aqi_band", "air-nguyen-van-cu", 20, 236, band="rat_xau", severity=Severity.critical),
        report("air.aqi_band", "air-nguyen-van-cu", 40, 181, band="xau"),
    )
    # The station's name has parentheses of its own: the district follows a comma.
    assert "556 Nguyễn Văn Cừ (quốc gia), Long Biên" in alert.title.en
    assert "VN_AQI 181 (Xấu / Bad)" in alert.text.en and "Highest: VN_AQI 236." in alert.text.en
    assert "VN_AQI 181 (Xấu)" in alert.text.vi and "Cao nhất: VN_AQI 236." in alert.text.vi
    assert LOCAL_EN in alert.text.en and LOCAL_VI in alert.text.vi  # the episode start, not the latest time


def test_water_alert_with_units_decimal_commas_and_the_lowest_value():
    alert = opened(
        report("water.do_low", "water-ho-truc-bach", 0, 1.45, threshold=2),
        report("water.do_low", "water-ho-truc-bach", 15, 1.8, threshold=2),
    )
    assert alert.title.vi == "Oxy hoà tan thấp tại Hồ Trúc Bạch (Ba Đình)"
    assert alert.text.en == (
        f"Low dissolved oxygen at Hồ Trúc Bạch (Ba Đình): dissolved oxygen 1.8 mg/L, below 2 mg/L {LOCAL_EN}."
        " Lowest: dissolved oxygen 1.45 mg/L."
    )
    assert alert.text.vi == (
        f"Oxy hoà tan thấp tại Hồ Trúc Bạch (Ba Đình): oxy hoà tan 1,8 mg/L, dưới ngưỡng 2 mg/L {LOCAL_VI}."
        " Thấp nhất: oxy hoà tan 1,45 mg/L."
    )


def test_traffic_alert_reads_the_score_as_a_number_and_gives_the_normal_speed():
    alert = opened(report("traffic.incident", "traffic-cau-giay", 0, 0.93, baseline=38.4))
    assert alert.text.en == (
        "Traffic incident at Nút giao Cầu Giấy: unusually low speed, anomaly score 0.93, above 0.7"
        f" {LOCAL_EN}. Normal: 38.4 km/h."
    )
    assert alert.text.vi == (
        "Sự cố giao thông tại Nút giao Cầu Giấy: tốc độ thấp bất thường, điểm 0,93, vượt ngưỡng 0,7"
        f" {LOCAL_VI}. Mức bình thường: 38,4 km/h."
    )


def test_area_slowdown_alert_reads_the_areas_speed_as_a_share_of_its_normal():
    alert = opened(report("traffic.area_slowdown", "traffic-cau-giay", 0, 0.61, threshold=0.65))
    assert alert.text.en == (
        f"Area-wide slow-down at Nút giao Cầu Giấy: the area's speed at 61% of normal, below 65% {LOCAL_EN}."
    )
    assert alert.text.vi == (
        "Ùn chậm diện rộng tại Nút giao Cầu Giấy: tốc độ cả khu vực bằng 61% mức bình thường, dưới ngưỡng"
        f" 65% {LOCAL_VI}."
    )


def test_crowding_alert_reads_the_score_as_a_number_and_gives_the_normal_taps():
    alert = opened(report("transit.crowding", "metro-2a-cat-linh", 0, 0.95, threshold=0.7, baseline=42))
    assert alert.text.en == (
        "Unusual crowding at a station at Cát Linh (Đống Đa): unusually many taps, anomaly score 0.95,"
        f" above 0.7 {LOCAL_EN}. Normal: 42 taps."
    )
    assert alert.text.vi == (
        "Ga đông bất thường tại Cát Linh (Đống Đa): lượt quẹt thẻ cao bất thường, điểm 0,95, vượt ngưỡng"
        f" 0,7 {LOCAL_VI}. Mức bình thường: 42 lượt quẹt thẻ."
    )


def test_statistical_alert_in_real_units_names_the_normal():
    alert = opened(report("air.aqi_band", "air-kim-lien", 0, 172, baseline=64))
    assert alert.text.en.endswith("Normal: 64.") and alert.text.vi.endswith("Mức bình thường: 64.")


def test_device_fault_alert():
    alert = opened(report("health.stale", "water-ho-tay", 0, 5, threshold=3))
    assert alert.title.en == "Sensor silent at Hồ Tây (Tây Hồ)"
    assert alert.title.vi == "Cảm biến mất tín hiệu tại Hồ Tây (Tây Hồ)"
    assert alert.text.en == (
        "Sensor silent at Hồ Tây (Tây Hồ): no data for 5 reporting intervals in a row, above 3 reporting"
        f" intervals {LOCAL_EN}."
    )
    assert alert.text.vi == (
        "Cảm biến mất tín hiệu tại Hồ Tây (Tây Hồ): mất tín hiệu 5 chu kỳ báo cáo liên tiếp, vượt ngưỡng"
        f" 3 chu kỳ báo cáo {LOCAL_VI}."
    )


def test_gate_offline_a_stuck_sensor_and_a_missing_value():
    gates = opened(report("transit.gate_offline", "metro-3-cau-giay", 0, 0, threshold=1))
    assert "0 taps in 15 min, below 1 tap" in gates.text.en
    assert "0 lượt quẹt thẻ trong 15 phút, dưới ngưỡng 1 lượt quẹt thẻ" in gates.text.vi
    stuck = report("health.flatline", "air-kim-lien", 0, 45).model_copy(
        update={"metric": "identical_minutes", "unit": "min"}
    )
    flat = opened(stuck)
    assert (
        "the same value for 45 min" in flat.text.en and "giữ nguyên một giá trị suốt 45 phút" in flat.text.vi
    )
    silent = opened(report("health.stale", "air-kim-lien", 0, None))
    assert "no reading" in silent.text.en and "không có số liệu" in silent.text.vi


@pytest.mark.parametrize(
    ("value", "en", "vi"),
    [
        (172.4, "172", "172"),
        (80.55, "80.5", "80,5"),
        (1.8, "1.8", "1,8"),
        (12500, "12,500", "12.500"),
        (0, "0", "0"),
    ],
)
def test_numbers_are_written_the_way_each_language_writes_them(value, en, vi):
    assert (messages.number(value, "en"), messages.number(value, "vi")) == (en, vi)


@pytest.mark.parametrize(
    ("metric", "band", "names"),
    [
        ("vn_aqi", "rat_xau", ("Rất xấu", "Very bad")),
        ("vn_aqi", "Rất xấu", ("Rất xấu", "Very bad")),
        ("vn_aqi", "nguy-hai", ("Nguy hại", "Hazardous")),
        ("vn_wqi", "xau", ("Xấu", "Poor")),  # the same word is a different band in VN_WQI
        ("vn_aqi", "purple", ("purple", "purple")),
    ],
)
def test_band_names(metric, band, names):
    assert messages.band_names(metric, band) == names


def test_an_air_quality_title_names_the_band_reached_not_the_rules():
    alert = opened(
        report("air.aqi_band", "air-kim-lien", 0, 498, band="nguy_hai", severity=Severity.critical)
    )
    assert alert.title.en == "Hazardous air quality at Kim Liên (Đống Đa)"
    assert alert.title.vi == "Chất lượng không khí Nguy hại tại Kim Liên (Đống Đa)"
    assert alert.text.en.startswith(
        "Hazardous air quality at Kim Liên (Đống Đa): VN_AQI 498 (Nguy hại / Hazardous)"
    )


def test_an_air_quality_title_rises_with_the_band_within_one_episode_under_one_id():
    state = manager.new_state()
    events = run(
        state,
        [
            report("air.aqi_band", "air-kim-lien", 0, 172, band="xau"),
            report("air.aqi_band", "air-kim-lien", 10, 236, band="rat_xau", severity=Severity.critical),
            report("air.aqi_band", "air-kim-lien", 15, 290, band="rat_xau", severity=Severity.critical),
            # Still critical and the peak only 5 % up: the band (and the title) rose, and that is published.
            report("air.aqi_band", "air-kim-lien", 20, 305, band="nguy_hai", severity=Severity.critical),
        ],
    )
    assert {e.alert.id for e in events} == {events[0].alert.id}
    assert [e.alert.title.en for e in events] == [
        "Bad air quality at Kim Liên (Đống Đa)",
        "Very bad air quality at Kim Liên (Đống Đa)",
        "Very bad air quality at Kim Liên (Đống Đa)",
        "Hazardous air quality at Kim Liên (Đống Đa)",
    ]
    # Falling back: the title keeps the worst band the episode reached.
    later = run(state, [report("air.aqi_band", "air-kim-lien", 120, 181, band="xau")])
    assert [e.alert.id for e in later] == [events[0].alert.id]
    assert later[0].alert.title.vi == "Chất lượng không khí Nguy hại tại Kim Liên (Đống Đa)"
