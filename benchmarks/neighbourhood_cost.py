"""What traffic's neighbourhood stage costs, offline, over the simulated fortnight's traffic (the
ground truth's events, ``benchmarks/ground_truth.py``): deviation records per reading, the stage's CPU
per record and per reading (best of 3), its state's size, and the reading path with and without
publishing the deviations, run alternately (the machine's noise is larger than the difference).

    IOC_CARD_HMAC_KEY=... python benchmarks/neighbourhood_cost.py [--seed 7] [--days 14]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from typing import Any

from benchmarks.ground_truth import simulated
from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors.neighbourhood import Deviation, Neighbourhood
from ioc.recording import RecordedEvent
from ioc.settings import Settings
from ioc.step import NeighbourhoodRun, OfflineRun


class Kept:
    """Stands in for the stage in an ``OfflineRun``: keeps what it is given, judges nothing."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Deviation]] = []

    def run(self, records: Iterable[tuple[str, Deviation]]) -> list[Any]:
        self.records += records
        return []


def reading_path(settings: Settings, events: list[RecordedEvent], publish: bool) -> tuple[float, int, Kept]:
    """CPU seconds of the reading path over ``events``, the readings counted, the deviations published."""
    run = OfflineRun(settings, load_rules(settings.rules), load_city(settings.city))
    kept = Kept()
    run.neighbourhoods["traffic"] = kept  # type: ignore[assignment]
    if not publish:
        run.steps["traffic"].detector._feeds["traffic"]._shared = frozenset()  # type: ignore[attr-defined]
    started = time.process_time()
    readings = sum(result.records for _, result in run.run(events))
    return time.process_time() - started, readings, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=float, default=14)
    args = parser.parse_args()
    settings = Settings()
    events, _ = simulated(settings, args.days, ["traffic"], args.seed)
    runs: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(2):
        for publish in (False, True):
            seconds, readings, kept = reading_path(settings, events, publish)
            runs[publish].append(seconds / readings * 1e6)
    hood = Neighbourhood("traffic", load_rules(settings.rules), load_city(settings.city))
    stage_seconds = []
    for _ in range(3):
        stage = NeighbourhoodRun(hood)
        started = time.process_time()
        found = stage.run(kept.records)
        stage_seconds.append(time.process_time() - started)
    sizes = [len(json.dumps(state)) for state in stage.states.values()]
    records = len(kept.records)
    print(f"traffic readings             {readings}")
    print(f"deviation records            {records} ({records / readings:.2f} per reading)")
    print(f"stage µs per record          {min(stage_seconds) / records * 1e6:.2f} (best of 3)")
    print(f"stage µs per reading         {min(stage_seconds) / readings * 1e6:.2f}")
    print(f"stage anomalies              {len(found)}")
    print(f"stage state bytes            mean {sum(sizes) // len(sizes)}, max {max(sizes)}")
    print("reading path µs per reading  without publishing " + ", ".join(f"{v:.1f}" for v in runs[False])
          + "; with " + ", ".join(f"{v:.1f}" for v in runs[True]))  # fmt: skip


if __name__ == "__main__":
    main()
