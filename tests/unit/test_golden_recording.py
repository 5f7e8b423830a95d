"""The guard of every move that must not change an output (issue 21: the feeds became plug-ins).

Two runs, against digests committed from the code before the move:

* ``hanoi-morning``: the shipped recording (``examples/hanoi-morning.jsonl.gz``: traffic, air, water);
* ``simulated``: six hours of the four feeds with their nine scenarios, from the simulator (seed 7, a fixed
  card key), so transit and the simulator itself are guarded too: its events and ground truth are
  digested before they go through the reading path.

Each goes through the offline reading path (``ioc.step.OfflineRun``, as ``ioc backtest`` runs it), the
alert manager and the incident grouping. Each kind of output — aggregates, anomalies, dead letters, alert
events, incident events — is kept as its count and the SHA-256 of its wire bytes in the order produced,
per feed where it has one, in ``tests/fixtures/golden/<run>.json``. To renew them after an intended
change of output: ``.venv/bin/python -m tests.unit.test_golden_recording``.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ioc.alerts import incidents, manager
from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.recording import RecordedEvent, in_event_time_order, load_events
from ioc.settings import Settings
from ioc.step import OfflineRun

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "examples" / "hanoi-morning.jsonl.gz"
GOLDEN = ROOT / "tests" / "fixtures" / "golden"
RULES, CITY = load_rules("hanoi"), load_city("hanoi")
SIMULATED_START = datetime(2026, 7, 10, 6, tzinfo=UTC)  # a Friday, 13:00 in Hanoi
GOLDEN_KINDS = (
    "pollution_episode,stuck_value,spike,dropout,out_of_range,traffic_incident,water_contamination,"
    "transit_surge,gate_offline"
)


class _Digest:
    def __init__(self) -> None:
        self.count = 0
        self.hash = hashlib.sha256()

    def add(self, wire: bytes) -> None:
        self.count += 1
        self.hash.update(len(wire).to_bytes(8, "big"))
        self.hash.update(wire)

    def summary(self) -> dict[str, Any]:
        return {"count": self.count, "sha256": self.hash.hexdigest()}


def shipped_recording() -> tuple[list[RecordedEvent], list[str]]:
    _, loaded = load_events(RECORDING, CITY)
    return loaded, []


def simulated_run() -> tuple[list[RecordedEvent], list[str]]:
    """Six hours of the four feeds with their scenarios injected; the events and the truth lines. Named,
    not "all": a feed added later brings scenarios of its own."""
    from connectors.sources.simulator import city_simulator, parse_feeds
    from connectors.sources.simulator.scenarios import ScenarioInjector, parse_kinds, plan_scenarios

    span, key = timedelta(hours=6), b"golden-card-key-0123456789abcdef"
    feeds = parse_feeds("air,traffic,water,transit")
    source = city_simulator(
        CITY,
        feeds,
        start=SIMULATED_START,
        duration=span,
        interval=None,
        seed=7,
        card_key=key,
        card_key_id="g1",
    )
    plan = plan_scenarios(
        CITY, parse_kinds(GOLDEN_KINDS), start=SIMULATED_START, duration=span, seed=7, interval=None
    )
    injected = ScenarioInjector(source, plan, CITY, seed=7, card_key=key, card_key_id="g1")
    return [RecordedEvent.of(event) for event in injected.events()], [s.to_json() for s in plan]


RUNS = {"hanoi-morning": shipped_recording, "simulated": simulated_run}


def digests(events: Iterable[RecordedEvent], truth: list[str]) -> dict[str, dict[str, Any]]:
    """The run's inputs and outputs as ``{"<what> <feed>": {count, sha256}}``."""
    found: dict[str, _Digest] = defaultdict(_Digest)
    events = list(events)
    for event in events:
        found[f"events {event.feed}"].add(
            f"{event.key}|{event.event_time.isoformat()}|".encode() + event.value
        )
    for line in truth:
        found["truth"].add(line.encode())
    entities: dict[str, dict[str, Any]] = {}
    districts: dict[str, dict[str, Any]] = {}
    for feed, result in OfflineRun(Settings(), RULES, CITY).run(in_event_time_order(events)):
        for window in result.aggregates.values():
            found[f"aggregates {feed}"].add(window.json)
        for letter in result.dead_letters:
            found[f"dead letters {feed}"].add(letter.to_json())
        for anomaly in result.anomalies:
            found[f"anomalies {feed}"].add(anomaly.to_json())
            state = entities.setdefault(anomaly.entity, manager.new_state())
            for event in manager.apply_anomaly(state, anomaly, RULES, CITY):
                found["alert events"].add(event.to_json())
                district = districts.setdefault(event.alert.district, incidents.new_state())
                for incident in incidents.apply_alert_event(district, event, RULES, CITY):
                    found["incident events"].add(incident.to_json())
    return {name: found[name].summary() for name in sorted(found)}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_the_outputs_are_the_committed_ones(run: str) -> None:
    expected = json.loads((GOLDEN / f"{run}.json").read_text(encoding="utf-8"))
    actual = digests(*RUNS[run]())
    differing = sorted(
        name for name in expected.keys() | actual.keys() if expected.get(name) != actual.get(name)
    )
    assert not differing, f"{run}: outputs differ from the golden file: " + "; ".join(
        f"{name}: {actual.get(name)} != {expected.get(name)}" for name in differing
    )
    # Every kind of output is there, so the guard guards something.
    for kind in ("aggregates", "anomalies", "dead letters", "alert events", "incident events"):
        assert any(name.startswith(kind) and summary["count"] for name, summary in actual.items()), kind


if __name__ == "__main__":
    for name, make in RUNS.items():
        (GOLDEN / f"{name}.json").write_text(json.dumps(digests(*make()), indent=2) + "\n", encoding="utf-8")
