"""The standards and the statistical rule the sensor detector evaluates from readings: QCVN 05:2023 means
(air), VN_WQI below 26 (water), and hourly PM2.5 scored by the general detector, learned online."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from ioc.alerts import manager
from ioc.alerts.rules import load_rules
from ioc.backtest.scoring import RaisedAlert, TruthScenario, accepted_rules, score
from ioc.city import load_city
from ioc.detectors import baseline, general, hourly
from ioc.detectors.feed import series_params
from ioc.detectors.sensor import STATE_VERSION, SensorDetector, new_sensor_state, upgrade_sensor_state
from ioc.feeds.air.model import AirQualityObserved
from ioc.feeds.water.model import WaterQualityObserved
from ioc.indices.water import vn_wqi
from ioc.models.anomaly import Anomaly, Severity
from tests.unit.test_alert_manager import report
from tests.unit.test_alert_manager import run as run_manager

RULES = load_rules("hanoi")
CITY = load_city("hanoi")
DETECTOR = SensorDetector(RULES, CITY)
T0 = datetime(2026, 7, 6, 0, 0, tzinfo=UTC)  # 07:00 on a Monday in Hanoi
AIR = "air-kim-lien"
LAKE, DRAIN = "water-ho-truc-bach", "water-to-lich-cau-giay"  # class B and class D


def air(at: datetime, pm25: float) -> AirQualityObserved:
    # The other pollutants vary a little, as real ones do: identical readings would be a stuck sensor.
    wobble = (at.minute % 7) / 10
    return AirQualityObserved(sensor_id=AIR, date_observed=at, pm25=round(pm25, 1),
                              pm10=round(pm25 * 1.4, 1), no2=30 + wobble, so2=9 + wobble, co=700 + wobble,
                              o3=40 + wobble, temperature=30.0, relative_humidity=70.0)  # fmt: skip


def run(events, state=None) -> tuple[dict, list[Anomaly]]:
    state = state if state is not None else new_sensor_state()
    found = []
    for event in events:
        found += DETECTOR.observe(state, event)
    return state, found


def minutes(start: datetime, count: int, level) -> list[AirQualityObserved]:
    """A reading a minute; ``level(minute)`` gives PM2.5, with a ±0.2 wobble."""
    return [air(start + timedelta(minutes=i), level(i) + (i % 5 - 2) / 10) for i in range(count)]


def of(found: list[Anomaly], rule: str) -> list[Anomaly]:
    return [a for a in found if a.rule == rule]


# --- sliding means over hourly sums ------------------------------------------------------------------


def test_hourly_sums_keep_a_bounded_positional_ring():
    ring: hourly.Ring = {}
    start = T0.timestamp()
    for i in range(30 * 60):  # 30 hours of minutes, PM2.5 = the hour's number
        hourly.add(ring, start + 60 * i, {"pm25": float(i // 60), "temperature": 30.0}, keep={"pm25": 25})
    last = hourly.hour_of(start + 60 * (30 * 60 - 1))
    newest, total, count, sums, counts = ring["pm25"]
    assert (newest, total, count) == (last, 29.0 * 60, 60) and len(sums) == len(counts) == 24
    assert set(ring) == {"pm25"} and json.loads(json.dumps(ring)) == ring  # only the fields kept
    assert hourly.means(ring, "pm25", last, 3) == [29.0, 28.0, 27.0]
    assert hourly.means(ring, "pm25", last, 26)[25] is None  # dropped
    assert hourly.means(ring, "pm25", last + hourly.HOUR, 2) == [None, 29.0]  # an hour not begun


def test_a_late_reading_makes_new_lists_of_the_completed_hours():
    """A completed hour's summary is kept with the lists it came from: a change to one of those hours
    (a late reading) must come with new lists, or the summary would go stale."""
    ring: hourly.Ring = {}
    start = T0.timestamp()
    for i in range(3 * 60):
        hourly.add(ring, start + 60 * i, {"pm25": 10.0 * (i // 60 + 1)}, keep={"pm25": 25})
    before = hourly.Completed.of_ring(ring["pm25"][3], ring["pm25"][4])
    assert before.holds(ring["pm25"]) and before.means[:2] == [20.0, 10.0]
    hourly.add(ring, start + 30, {"pm25": 70.0}, keep={"pm25": 25})  # into the first hour, late
    assert not before.holds(ring["pm25"])
    after = hourly.Completed.of_ring(ring["pm25"][3], ring["pm25"][4])
    assert after.means[:2] == [20.0, (10.0 * 60 + 70.0) / 61]
    hourly.add(ring, start - 30 * hourly.HOUR, {"pm25": 1.0}, keep={"pm25": 25})  # older than kept
    assert hourly.Completed.of_ring(ring["pm25"][3], ring["pm25"][4]).means == after.means


def test_a_sliding_24_hour_mean_weighs_this_hour_by_how_much_of_it_has_passed():
    # 23 full hours at 40, this hour at 100 and half gone, the hour 24 back (at 40) half still in.
    hourly_means = [100.0] + [40.0] * 24
    mean = hourly.trailing_mean(hourly_means, share=0.5, hours=24)
    assert mean == hourly.WindowMean((0.5 * 100 + 23 * 40 + 0.5 * 40) / 24, complete=True)
    assert mean.value == pytest.approx(41.25)
    # The 1-hour mean: half this hour, half the one before.
    assert hourly.trailing_mean([100.0, 40.0], share=0.5, hours=1) == hourly.WindowMean(70.0, True)
    assert hourly.into_hour(T0.timestamp() + 30 * 60, covers=60) == pytest.approx(31 / 60)
    assert hourly.into_hour(T0.timestamp(), covers=3600) == 1.0  # an hourly station's reading


def test_with_too_few_hours_the_mean_is_its_least_possible_value():
    six_bad_hours = [200.0] * 6 + [None] * 19
    assert hourly.trailing_mean(six_bad_hours, share=1.0, hours=24) == hourly.WindowMean(50.0, False)
    eighteen = [40.0] * 18 + [None] * 7  # 18 of 24 hours: the mean stands (75 %)
    assert hourly.trailing_mean(eighteen, share=1.0, hours=24) == hourly.WindowMean(40.0, True)
    assert hourly.trailing_mean([None] * 25, share=1.0, hours=24) is None


def trailing_as_written(
    hourly_means: list[float | None], share: float, hours: int
) -> hourly.WindowMean | None:
    """The sliding mean as first written: one loop over the hours, newest first."""
    weighted = covered = 0.0
    for back, mean in enumerate(hourly_means[: hours + 1]):
        if mean is None:
            continue
        weight = share if back == 0 else (1.0 - share if back == hours else 1.0)
        if weight > 0:
            weighted += weight * mean
            covered += weight
    if covered == 0:
        return None
    if covered >= hourly.COMPLETE * hours:
        return hourly.WindowMean(weighted / covered, complete=True)
    return hourly.WindowMean(weighted / hours, complete=False)


def random_hours(rng: random.Random, count: int, missing: float) -> list[float | None]:
    return [None if rng.random() < missing else round(rng.lognormvariate(3.6, 0.5), 1) for _ in range(count)]


def test_a_mean_far_under_its_limit_is_told_by_this_hours_mean_alone():
    # 23 whole hours at 40 µg/m³ and the hour 24 back at 40: this hour may reach about 45·24 - 23·40.
    window = hourly.Completed.of_means([40.0] * 24).window(24)
    assert hourly.quiet_up_to(window, 24, 45.0) == pytest.approx(160.0)
    assert hourly.quiet_up_to(hourly.Completed.of_means([50.0] * 24).window(24), 24, 45.0) == -math.inf


def test_the_sliding_mean_and_its_bounds():
    """Float for float the loop's mean; its bounds hold it; under ``quiet_up_to`` it is under the limit
    whatever the share of the hour (so a condition at rest may skip it)."""
    rng = random.Random(17)
    for _ in range(4000):
        hours = rng.choice([1, 8, 24])
        means = random_hours(rng, hours + 1, missing=rng.choice([0.0, 0.1, 0.5, 0.9]))
        window = hourly.Completed.of_means(means[1:]).window(hours)
        limit = rng.choice([45.0, 40.0, 60.0, 100.0])
        quiet = hourly.quiet_up_to(window, hours, limit)
        for share in (1 / 60, rng.uniform(0, 1), 0.75, 1.0):
            exact = trailing_as_written(means, share, hours)
            assert hourly.trailing_mean(means, share, hours) == exact
            assert hourly.sliding_mean(means[0], window.between, window.last, share, hours) == exact
            bounds = hourly.sliding_mean_bounds(means[0], window, share, hours)
            assert (bounds is None) == (exact is None)
            if exact is not None and bounds is not None:
                assert bounds[0] <= exact.value <= bounds[1]
            for current in (0.0, quiet, rng.uniform(0, max(quiet, 0.0))):
                if 0 <= current <= quiet:
                    mean = trailing_as_written([current, *means[1:]], share, hours)
                    assert mean is not None and mean.value <= limit, (current, quiet, means, share)


# --- QCVN 05:2023 ------------------------------------------------------------------------------------


def test_the_qcvn05_rules_carry_the_reference_limits():
    limits = {
        rule.id: (rule.params["pollutant"], rule.params["mean_hours"], rule.trigger.above)
        for rule in RULES.rules
        if rule.id.startswith("air.qcvn05_")
    }
    assert limits == {
        "air.qcvn05_pm25_24h": ("pm25", 24, 45),
        "air.qcvn05_pm10_24h": ("pm10", 24, 100),
        "air.qcvn05_no2_1h": ("no2", 1, 200),
        "air.qcvn05_no2_24h": ("no2", 24, 100),
        "air.qcvn05_so2_1h": ("so2", 1, 350),
        "air.qcvn05_so2_24h": ("so2", 24, 125),
        "air.qcvn05_co_1h": ("co", 1, 30000),
        "air.qcvn05_co_8h": ("co", 8, 10000),
        "air.qcvn05_o3_1h": ("o3", 1, 200),
        "air.qcvn05_o3_8h": ("o3", 8, 120),
    }
    for rule_id in limits:
        rule = RULES.get(rule_id)
        assert rule.kind == "standard" and rule.clear.below == pytest.approx(0.9 * rule.trigger.above)
        assert rule.window == f"{rule.params['mean_hours']:g}h" and rule.unit == "µg/m³"


def test_pm25_over_its_24_hour_limit_fires_once_the_sliding_mean_passes_45():
    day = minutes(T0, 24 * 60, lambda i: 40.0)  # mean 40: under the limit
    state, found = run(day)
    assert not of(found, "air.qcvn05_pm25_24h")
    episode = T0 + timedelta(days=1)
    state, found = run(minutes(episode, 3 * 60, lambda i: 200.0), state)
    opened = of(found, "air.qcvn05_pm25_24h")[0]
    # 40 + 160·t/24 > 45 from t = 45 min (the first three readings wait for the spike verdict).
    assert timedelta(minutes=45) <= opened.observed_at - episode <= timedelta(minutes=47)
    assert opened.firing and opened.value > 45 and opened.threshold == 45 and opened.window == "24h"
    assert opened.severity == Severity.warning and opened.unit == "µg/m³"
    assert of(found, "air.qcvn05_pm10_24h") == []  # PM10 = 1.4 × PM2.5: its mean is still under 100


def test_a_fresh_sensor_proves_an_exceedance_before_it_has_18_hours_of_data():
    # Six hours at 200 from the first reading: at least 6·200/24 = 50 > 45, whatever the missing hours.
    state, found = run(minutes(T0, 6 * 60, lambda i: 200.0))
    opened = of(found, "air.qcvn05_pm25_24h")
    assert opened and opened[0].observed_at - T0 == pytest.approx(
        timedelta(minutes=5 * 60 + 24), abs=timedelta(minutes=2)
    )


def test_a_24_hour_mean_hovering_at_the_limit_is_one_episode():
    # A day at 44.6, then hours alternating 60 and 29.2: the 24-hour mean swings 44.6 ↔ 45.2 every hour.
    state, found = run(minutes(T0, 24 * 60, lambda i: 44.6))
    assert not of(found, "air.qcvn05_pm25_24h")
    swings = minutes(T0 + timedelta(days=1), 24 * 60, lambda i: 60.0 if (i // 60) % 2 == 0 else 29.2)
    crossings, above = 0, False
    for event in swings:
        found += DETECTOR.observe(state, event)
        epoch = event.event_time.timestamp()
        pm25 = hourly.means(state["feed"]["hours"], "pm25", hourly.hour_of(epoch), 25)
        mean = hourly.trailing_mean(pm25, hourly.into_hour(epoch, 60), 24).value
        crossings += (mean > 45) and not above
        above = mean > 45
    assert crossings >= 10  # without hysteresis: as many episodes
    fired = of(found, "air.qcvn05_pm25_24h")
    assert len({a.episode_start for a in fired}) == 1 and all(a.firing for a in fired)


# --- VN_WQI below 26 ---------------------------------------------------------------------------------

# A sewage-fed lake in summer (../shared/reference/water_quality.md): coliform and E. coli past the
# table's end (q = 10), organics and nutrients poor.
POLLUTED = {"ph": 8.0, "dissolved_oxygen": 3.6, "temperature": 31.0, "bod5": 21.0, "cod": 48.0, "nh4_n": 2.7,
            "no3_n": 1.2, "no2_n": 0.12, "po4_p": 0.5, "coliform": 12000.0, "e_coli": 450.0}  # fmt: skip
FAIR = POLLUTED | {"dissolved_oxygen": 6.5, "bod5": 8.0, "cod": 20.0, "nh4_n": 0.6, "po4_p": 0.2}


def water(sensor: str, at: datetime, sample: dict[str, float]) -> WaterQualityObserved:
    return WaterQualityObserved(sensor_id=sensor, date_observed=at, **sample)


def test_the_detector_reports_the_samples_vn_wqi_and_fires_below_26():
    index = vn_wqi(POLLUTED)
    # By hand, cube-root variant: DO 3.6 mg/L at 31 °C is 48.9 % saturation → q 48.9; BOD5 21 → 35;
    # COD 48 → 26.5; N-NH4 2.7 → 18.4; N-NO3 1.2 → 100; N-NO2 0.12 → 10; P-PO4 0.5 → 25. Group IV
    # ≈ 37.7, group V = 10, pH 8.0 → 100: (37.7²·10)^(1/3) ≈ 24.2 → 24, band Kém.
    assert index.value == 24 and index.band.key == "kem"
    state, found = run([water(LAKE, T0, POLLUTED)])
    opened = of(found, "water.wqi_low")
    assert len(opened) == 1 and opened[0].value == 24 and opened[0].band == "kem"
    assert opened[0].threshold == 26 and opened[0].severity == Severity.info


def test_a_water_quality_index_hovering_at_26_is_one_episode_until_six_better_hours():
    samples = [POLLUTED, FAIR] * 8 + [FAIR] * 30  # FAIR scores above 30
    assert vn_wqi(FAIR).value > 30
    events = [water(LAKE, T0 + timedelta(minutes=15 * i), sample) for i, sample in enumerate(samples)]
    state, found = run(events)
    reported = of(found, "water.wqi_low")
    assert {a.episode_start for a in reported} == {T0}
    closed = [a for a in reported if not a.firing]
    last_bad = T0 + timedelta(minutes=15 * 14)
    assert len(closed) == 1 and closed[0].observed_at - (last_bad + timedelta(minutes=15)) == timedelta(
        hours=6
    )


def test_no_wqi_rule_for_an_urban_drain_nor_from_a_sample_short_of_data():
    state, found = run([water(DRAIN, T0, POLLUTED)])
    assert of(found, "water.wqi_low") == []
    short = {"ph": 7.0, "dissolved_oxygen": 0.5, "temperature": 30.0, "nh4_n": 20.0}  # group IV: 2
    assert not vn_wqi(short).sufficient
    state, found = run([water(LAKE, T0, short)])
    assert of(found, "water.wqi_low") == []


# --- hourly PM2.5 scored by the general detector --------------------------------------------------------


def ordinary_pm25(days: float, seed: int = 1) -> list[AirQualityObserved]:
    """A station's ordinary PM2.5: a daily rhythm (high at dawn, low mid-afternoon) and a level that
    wanders a little from hour to hour."""
    rng = random.Random(seed)
    events, level = [], 0.0
    for i in range(int(days * 24 * 60)):
        at = T0 + timedelta(minutes=i)
        if at.minute == 0:
            level = 0.7 * level + rng.gauss(0, 0.1)
        local_hour = (at.hour + 7) % 24 + at.minute / 60
        rhythm = 25 * (1 + 0.3 * math.cos(2 * math.pi * (local_hour - 6) / 24))
        events.append(air(at, rhythm * math.exp(level) + rng.uniform(-0.3, 0.3)))
    return events


def test_an_unusual_hour_of_pm25_fires_the_statistical_rule_once_that_hour_has_ended():
    state, found = run(ordinary_pm25(days=2))
    assert of(found, "air.pm25_unusual") == []
    episode = T0 + timedelta(days=2)
    state, found = run(minutes(episode, 4 * 60, lambda i: 160.0), state)
    opened = of(found, "air.pm25_unusual")[0]
    assert opened.firing and opened.kind == "statistical" and opened.window == "1h"
    assert opened.observed_at == episode + timedelta(hours=1)  # the first reading after the bad hour
    assert opened.value >= 0.5 and opened.threshold == 0.5
    assert 15 < opened.baseline < 40  # µg/m³: the normal it was compared with
    # Back to normal: two calm hours in a row end the episode (the detector's CUSUM holds a 4-hour
    # episode for a few hours after it).
    later = T0 + timedelta(days=2, hours=4)
    state, found = run(minutes(later, 6 * 60, lambda i: 25.0), state)
    assert [a.firing for a in of(found, "air.pm25_unusual")][-1] is False


def test_the_detector_survives_a_json_round_trip_mid_stream():
    # Past the hourly configuration's start-up (two days of hourly means).
    events = ordinary_pm25(days=2.5) + minutes(T0 + timedelta(days=2.5), 3 * 60, lambda i: 150.0)
    events += minutes(T0 + timedelta(days=2.5, hours=3), 3 * 60, lambda i: 25.0)
    half = len(events) // 2 + 37
    state, first = run(events[:half])
    restored = json.loads(json.dumps(state))
    assert restored == state
    state, rest = run(events[half:], state)
    restored, rest_restored = run(events[half:], restored)
    assert rest_restored == rest and restored == state
    assert of(first + rest, "air.pm25_unusual")  # the run did exercise the rule
    judged, series = state["feed"]["series"]["air.pm25_unusual"]
    assert series["n"] > 48 and judged is not None


def test_a_spike_is_kept_out_of_the_hourly_means_and_the_detector():
    ordinary = ordinary_pm25(days=1, seed=3)
    spiked_at = {600, 601, 602}  # three readings of a faulty sensor, then back
    spiked = [air(e.event_time, 1800.0) if i in spiked_at else e for i, e in enumerate(ordinary)]
    without = [e for i, e in enumerate(ordinary) if i not in spiked_at]
    with_spike, found = run(spiked)
    assert of(found, "health.spike")
    clean, _ = run(without)
    assert with_spike["feed"]["hours"] == clean["feed"]["hours"]
    assert with_spike["feed"]["series"] == clean["feed"]["series"]


def test_a_stuck_sensor_teaches_the_detector_nothing():
    ordinary = ordinary_pm25(days=1, seed=4)
    stuck = ordinary[:600] + [ordinary[600].model_copy(update={"date_observed": e.date_observed})
                              for e in ordinary[600:720]]  # fmt: skip
    state, found = run(stuck + ordinary[720:800])
    assert of(found, "health.flatline")
    _, series = state["feed"]["series"]["air.pm25_unusual"]
    hour_of_stuck = hourly.hour_of((T0 + timedelta(minutes=660)).timestamp())
    last = hourly.hour_of((T0 + timedelta(minutes=799)).timestamp())
    # Only its first two readings count: nothing of the hour after them.
    assert (
        hourly.means(state["feed"]["hours"], "pm25", last, 3)[(last - hour_of_stuck) // hourly.HOUR] is None
    )
    # 11 hours learned: the 10 before the fault and the one after it that has ended.
    assert series["n"] == 10 + (800 - 720) // 60


def test_a_state_of_version_1_with_a_seasonal_baseline_is_upgraded_and_keeps_working():
    """A worker upgraded in place meets air states of version 1, whose statistical rule kept a seasonal
    baseline (``ioc.detectors.baseline``): the rule's series starts afresh, the last hour judged kept,
    and after its start-up the rule fires on a polluted hour as a fresh state's would."""
    ordinary = ordinary_pm25(days=4, seed=5)
    state, _ = run(ordinary[: 24 * 60])
    judged, _ = state["feed"].pop("series")["air.pm25_unusual"]
    model = baseline.new_model()  # what version 1 kept: the baseline of the day's hourly means
    for hour in range(24):
        at = T0 + timedelta(hours=hour, minutes=30)
        baseline.score_model(model, baseline.BaselineParams(direction=1), at, math.log1p(25 + hour % 5))
    feed = {**state["feed"], "baselines": {"air.pm25_unusual": [judged, model]}}
    version_1 = json.loads(json.dumps({**state, "v": 1, "feed": feed}))
    upgraded = upgrade_sensor_state(version_1)
    assert upgraded["v"] == STATE_VERSION and "baselines" not in upgraded["feed"]
    assert upgraded["feed"]["series"]["air.pm25_unusual"] == [judged, general.new_series()]
    assert {k: v for k, v in upgraded["feed"].items() if k != "series"} == {
        k: v for k, v in state["feed"].items() if k != "series"
    }
    state, found = run(ordinary[24 * 60 :], upgraded)
    assert of(found, "air.pm25_unusual") == []
    # The first day's last hour (it ended with the upgraded state) and the next 71: none twice.
    assert state["feed"]["series"]["air.pm25_unusual"][1]["n"] == 3 * 24
    state, found = run(minutes(T0 + timedelta(days=4), 3 * 60, lambda i: 160.0), state)
    assert of(found, "air.pm25_unusual")[0].firing


def test_a_rules_file_can_tune_the_detector_and_refuses_unknown_knobs():
    rule = RULES.get("air.pm25_unusual")
    assert rule.kind == "statistical" and rule.params["field"] == "pm25" and rule.params["scale"] == "log"
    broken = RULES.model_copy(
        update={"rules": [r if r.id != rule.id else rule.model_copy(update={"params": {"field": "pm25",
                                                                                           "spike": 4.0}})
                          for r in RULES.rules]}
    )  # fmt: skip
    with pytest.raises(ValueError, match="unknown detector parameters"):
        SensorDetector(broken, CITY)


def test_the_statistical_rule_runs_the_general_detector_in_its_hourly_configuration():
    """The detector ``ioc detect`` measures, with the start-up and hour slots of hourly means (a day's
    start-up of 5-minute readings would be ten days of hourly ones) and the field's direction."""
    rule = RULES.get("air.pm25_unusual")
    params = series_params(rule, 3600)
    assert params == general.params_for_metric("pm25", cadence_seconds=3600)
    assert params.direction == 1 and params.warmup == 48 and params.hour_min_samples == 4
    tuned = rule.model_copy(update={"params": {**rule.params, "warmup": 72}})
    assert series_params(tuned, 3600).warmup == 72  # a rules file may still set one of its parameters


# --- the ground truth's accepted rules -----------------------------------------------------------------


def scenario(kind: str, rules: tuple[str, ...], entity: str) -> TruthScenario:
    return TruthScenario(id=f"sc-{kind}", kind=kind, entities=[entity], district="dong-da", start=T0,
                         end=T0 + timedelta(hours=8), rules=list(rules))  # fmt: skip


def test_a_city_anomaly_accepts_the_other_rules_of_its_feed_but_a_device_fault_does_not():
    episode = scenario("pollution_episode", ("air.aqi_band", "air.qcvn05_pm25_24h"), AIR)
    accepted = accepted_rules(episode, RULES)
    assert {"air.qcvn05_pm10_24h", "air.pm25_unusual", "air.aqi_band"} <= accepted
    assert not any(rule.startswith(("health.", "water.", "traffic.")) for rule in accepted)
    assert accepted_rules(scenario("spike", ("health.spike",), AIR), RULES) == {"health.spike"}
    contamination = scenario("water_contamination", ("water.do_low", "water.nh4_limit"), LAKE)
    assert "water.wqi_low" in accepted_rules(contamination, RULES)


def test_an_accepted_rule_counts_for_precision_but_recall_of_every_rule_asks_the_expected_ones():
    episode = scenario("pollution_episode", ("air.aqi_band", "air.qcvn05_pm25_24h"), AIR)
    start = T0 + timedelta(hours=2)
    alerts = [RaisedAlert("a", "air.aqi_band", AIR, start, start),
              RaisedAlert("b", "air.qcvn05_pm10_24h", AIR, start, start),
              RaisedAlert("c", "health.spike", AIR, start, start)]  # fmt: skip
    result = score(alerts, [episode], RULES)
    assert result.matched_alerts == 2 and [a.id for a in result.unmatched] == ["c"]
    assert result.recalled == ["sc-pollution_episode"] and result.fully_recalled == []


# --- what the operator reads -----------------------------------------------------------------------------


def test_the_new_rules_read_well_in_both_languages():
    def text(*anomaly):
        return run_manager(manager.new_state(), anomaly)[-1].alert.text

    qcvn = text(report("air.qcvn05_pm25_24h", AIR, 0, 62.4))
    assert "24-hour mean PM2.5 62.4 µg/m³, above 45 µg/m³" in qcvn.en
    assert "PM2.5 trung bình 24 giờ 62,4 µg/m³, vượt ngưỡng 45 µg/m³" in qcvn.vi
    unusual = text(report("air.pm25_unusual", AIR, 0, 0.81, baseline=23.0))
    assert "hourly PM2.5 anomaly score 0.81, above 0.5" in unusual.en and "Normal: 23 µg/m³." in unusual.en
    assert "điểm 0,81, vượt ngưỡng 0,5" in unusual.vi
    wqi = text(report("water.wqi_low", LAKE, 0, 24, band="kem"))
    assert "VN_WQI 24 (Kém / Bad), below 26" in wqi.en and "VN_WQI 24 (Kém), dưới ngưỡng 26" in wqi.vi
