"""Traffic's neighbourhood stage through the real broker: two weeks of traffic with area slow-downs and
incidents, the worker killed (SIGKILL) and restarted halfway through. The stage judges each detector
beside its neighbours from the deviations the pipelines publish, whichever partition runs ahead, so
the stream's anomalies and alerts are the ones the same pure steps give offline, and every area
slow-down is found as one, while no incident is taken for one (an incident's neighbours slow too)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import datetime, timedelta

import pytest

from connectors.kafka import create_topics
from connectors.sources.simulator import city_simulator
from connectors.sources.simulator.scenarios import ScenarioInjector, plan_scenarios
from ioc.alerts.rules import load_rules
from ioc.backtest.run import detect
from ioc.backtest.scoring import TruthScenario, alerts_from_anomalies, score
from ioc.city import load_city
from ioc.recording import RecordedEvent
from tests.e2e.test_alerts_ground_truth import alert_events, opened, produce
from tests.online_offline import offline, settled, streamed
from tests.processes import IocProcess, wait_for

pytestmark = pytest.mark.e2e

START = datetime.fromisoformat("2026-07-06T00:00:00+07:00")
DAYS = 15  # a week for each road's hour-of-week normals, then area slow-downs can be told
SEED = 7
FEEDS = ["traffic"]
KINDS = ["traffic_incident", "area_slowdown"]
AREA = "traffic.area_slowdown"


def simulated(settings):
    city = load_city(settings.city)
    duration = timedelta(days=DAYS)
    key, key_id = settings.card_hmac_key.get_secret_value().encode(), settings.card_hmac_key_id
    source = city_simulator(city, FEEDS, start=START, duration=duration, seed=SEED, card_key=key,
                            card_key_id=key_id)  # fmt: skip
    scenarios = plan_scenarios(city, KINDS, start=START, duration=duration, seed=SEED)
    injected = ScenarioInjector(source, scenarios, city, seed=SEED, card_key=key, card_key_id=key_id)
    return list(injected.events()), [TruthScenario.model_validate_json(s.to_json()) for s in scenarios]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_area_slowdowns_are_told_from_incidents_in_the_stream_as_offline_across_a_crash(settings, tmp_path):
    settings = settings.model_copy(update={"worker_session_timeout_seconds": 10})
    rules, city = load_rules(settings.rules), load_city(settings.city)
    events, truth = simulated(settings)
    offline_alerts, _ = alerts_from_anomalies(
        detect((RecordedEvent.of(e) for e in events), rules, city, settings).anomalies
    )
    expected = {alert.id: alert for alert in offline_alerts}
    areas = {alert.id for alert in offline_alerts if alert.rule == AREA}
    assert areas, "the offline run finds area slow-downs"
    create_topics(settings)
    asyncio.run(produce(settings, events))

    worker = IocProcess(["worker"], settings, tmp_path / "worker-1.log")
    try:
        wait_for(lambda: len(set(opened(alert_events(settings))) & areas) >= len(areas) / 2, timeout=300,
                 every=2, processes=[worker])  # fmt: skip
        worker.process.send_signal(signal.SIGKILL)
        worker.stop()
        worker = IocProcess(["worker"], settings, tmp_path / "worker-2.log")
        with contextlib.suppress(AssertionError):
            wait_for(lambda: set(opened(alert_events(settings))) >= set(expected), timeout=300, every=2,
                     processes=[worker])  # fmt: skip
        missing = [expected[i] for i in set(expected) - set(opened(alert_events(settings)))]
        assert not missing, f"{len(missing)} of {len(expected)} alerts not raised online: {missing[:5]}"
        wait_for(lambda: settled(settings, FEEDS), timeout=300, every=2, processes=[worker])
    finally:
        worker.stop()
    # The pipeline's and the stage's anomalies byte for byte as offline.
    assert streamed(settings, FEEDS).without_repeats().differences(offline(settings, FEEDS)) == []

    online = opened(alert_events(settings))
    assert set(online) == set(expected), "the stream run and the offline run disagree on the alerts"
    slowdowns = [t for t in truth if t.kind == "area_slowdown"]
    incidents = [t for t in truth if t.kind == "traffic_incident"]
    assert slowdowns and incidents
    result = score([a for a in online.values() if a.rule == AREA], slowdowns, rules)
    print(result.summary())
    assert result.recall == 1.0, result.summary()  # every slow-down found as one
    # Seed 7's third Monday evening (18:00) slows giai-phong and its two neighbours to 0.62 of their
    # normals for 45 minutes: the simulator's own rush-hour noise at saturation, no scenario of it.
    assert result.precision >= 0.9, result.summary()
    # and never an incident: no area alert on an incident's detectors while it lasts
    for alert in (a for a in online.values() if a.rule == AREA):
        assert not any(
            alert.entity in t.entities and t.start <= alert.episode_start <= t.end for t in incidents
        ), alert
