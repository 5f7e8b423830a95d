"""The simulator's ground truth offline: the seed-7 July week through the reading path and the alert
manager (``ioc.backtest``), scored per rule, in one process (no Kafka): the measuring loop for a
detector change, minutes instead of the e2e test's half hour.

    IOC_CARD_HMAC_KEY=... python benchmarks/ground_truth.py                 # the full week, every feed
    IOC_CARD_HMAC_KEY=... python benchmarks/ground_truth.py --days 3 --feeds air,traffic
    IOC_CARD_HMAC_KEY=... python benchmarks/ground_truth.py --seed 11      # another week

The events and scenarios are those of ``tests/e2e/test_alerts_ground_truth.py`` (``simulated_week``);
the alerts are the offline ones that test compares the stream's with (``alerts_from_anomalies``).
Fewer days or feeds plan fewer scenarios, so their figures are for iterating, not for the record.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from datetime import datetime, timedelta

from connectors.sources.simulator import city_simulator
from connectors.sources.simulator.scenarios import KINDS, ScenarioInjector, plan_scenarios
from ioc.alerts.rules import load_rules
from ioc.backtest.run import detect
from ioc.backtest.scoring import TruthScenario, accepted_rules, alerts_from_anomalies, score
from ioc.city import load_city
from ioc.feeds import FEEDS
from ioc.recording import RecordedEvent
from ioc.settings import Settings

START = datetime.fromisoformat("2026-07-06T00:00:00+07:00")  # as the e2e test: July, rainy season
SEED = 7


def simulated(
    settings: Settings, days: float, feeds: list[str], seed: int = SEED
) -> tuple[list[RecordedEvent], list[TruthScenario]]:
    """The e2e test's week (``simulated_week``) for ``days`` and ``feeds``: events and ground truth."""
    city = load_city(settings.city)
    duration = timedelta(days=days)
    key, key_id = settings.card_hmac_key.get_secret_value().encode(), settings.card_hmac_key_id
    source = city_simulator(city, feeds, start=START, duration=duration, seed=seed, card_key=key,
                            card_key_id=key_id)  # fmt: skip
    kinds = KINDS
    scenarios = plan_scenarios(city, kinds, start=START, duration=duration, seed=seed)
    injected = ScenarioInjector(source, scenarios, city, seed=seed, card_key=key, card_key_id=key_id)
    truth = [TruthScenario.model_validate_json(s.to_json()) for s in scenarios]
    return [RecordedEvent.of(e) for e in injected.events()], truth


def measure(settings: Settings, days: float, feeds: list[str], seed: int = SEED) -> dict[str, object]:
    """Recall, precision and per rule: alerts, matched, unmatched; scenarios matched and missed per kind."""
    rules, city = load_rules(settings.rules), load_city(settings.city)
    started = time.perf_counter()
    events, truth = simulated(settings, days, feeds, seed)
    simulated_s = time.perf_counter() - started
    started = time.process_time()
    outcome = detect(events, rules, city, settings)
    detect_cpu = time.process_time() - started
    alerts, reopened = alerts_from_anomalies(outcome.anomalies)
    result = score(alerts, truth, rules, duplicates=reopened)
    unmatched = Counter(a.rule for a in result.unmatched)
    per_rule: dict[str, dict[str, int]] = {}
    for alert in alerts:
        row = per_rule.setdefault(alert.rule, {"alerts": 0, "matched": 0})
        row["alerts"] += 1
    for rule, row in per_rule.items():
        row["matched"] = row["alerts"] - unmatched[rule]
    per_kind: dict[str, dict[str, int]] = {}
    missed = set(result.missed)
    for scenario in truth:
        row = per_kind.setdefault(scenario.kind, {"matched": 0, "missed": 0})
        row["missed" if scenario.id in missed else "matched"] += 1
    return {
        "days": days,
        "feeds": feeds,
        "events": len(events),
        "simulate_s": round(simulated_s, 1),
        "detect_cpu_s": round(detect_cpu, 1),
        "detect_cpu_us_per_event": round(1e6 * detect_cpu / max(len(events), 1), 1),
        **result.summary(),
        "per_rule": dict(sorted(per_rule.items())),
        "per_kind": dict(sorted(per_kind.items())),
        "accepted": {s.id: sorted(accepted_rules(s, rules)) for s in truth if s.id in missed},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--feeds", default=",".join(FEEDS), help="comma-separated (default: every feed)")
    parser.add_argument("--seed", type=int, default=SEED, help="another week: the e2e test's is 7")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures = measure(Settings(), args.days, args.feeds.split(","), args.seed)
    for name in ("events", "simulate_s", "detect_cpu_s", "detect_cpu_us_per_event", "scenarios", "alerts",
                 "recall", "precision", "median_delay_windows", "duplicates"):  # fmt: skip
        print(f"{name:24} {figures[name]}")
    print("per rule (alerts, matched):")
    for rule, row in figures["per_rule"].items():  # type: ignore[union-attr]
        print(f"  {rule:28} {row['alerts']:4} {row['matched']:4}")
    print("per scenario kind (matched, missed):")
    for kind, row in figures["per_kind"].items():  # type: ignore[union-attr]
        print(f"  {kind:28} {row['matched']:4} {row['missed']:4}")
    print("missed:", figures["missed"])
    print("unmatched:")
    for line in figures["unmatched"]:  # type: ignore[union-attr]
        print("  ", line)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=1, default=str)


if __name__ == "__main__":
    main()
