"""Growth of the reading path alone: ``ioc.step`` CPU per event with 30 simulated hours of state
against 0.5 hours, offline (no Kafka, Faust, Redis, alert manager).

    python benchmarks/reading_path_growth.py [--sensors 40] [--rounds 3]

The same segments as ``benchmarks/growth.py`` (A: a young run's hours 0.5–3.5 from 2026-01-12 00:00
+07:00; B: an old run's hours 30–33 from 2026-01-10 18:30, the same clock time), through
``OfflineRun`` in batches of 1,000 (the worker's). The worker's B/A also carries what B's extra
anomalies cost downstream (the alert manager, incidents, the picture); this one isolates what the
sensors' state costs. Prints A, B (median and range over rounds × 1-hour chunks) and B/A.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.backlog import air_city, air_events  # noqa: E402
from ioc.alerts.rules import load_rules  # noqa: E402
from ioc.recording import RecordedEvent  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from ioc.step import OfflineRun  # noqa: E402

OLD_START = datetime.fromisoformat("2026-01-10T18:30:00+07:00")
YOUNG_START = datetime.fromisoformat("2026-01-12T00:00:00+07:00")
BATCH = 1000


def cpu_per_event(run: OfflineRun, events: list[RecordedEvent]) -> float:
    """Process CPU µs per event of ``events`` through ``run``, in the worker's batch size."""
    began = time.process_time()
    for first in range(0, len(events), BATCH):
        for _ in run.run(events[first : first + BATCH]):
            pass
    return (time.process_time() - began) / len(events) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sensors", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings, per_hour = Settings(), args.sensors * 60
    rules, city = load_rules(settings.rules), air_city(args.sensors)
    old = [RecordedEvent.of(e) for e in air_events(per_hour * 33, args.sensors, 7, start=OLD_START)]
    young = [RecordedEvent.of(e) for e in air_events(per_hour * 7 // 2, args.sensors, 7, start=YOUNG_START)]
    a: list[float] = []
    b: list[float] = []
    for _ in range(args.rounds):
        old_run, young_run = OfflineRun(settings, rules, city), OfflineRun(settings, rules, city)
        cpu_per_event(old_run, old[: per_hour * 30])
        cpu_per_event(young_run, young[: per_hour // 2])
        for hour in range(3):  # A and B alternate, so drift on the machine hits both alike
            a.append(cpu_per_event(young_run, young[per_hour // 2 + hour * per_hour :][:per_hour]))
            b.append(cpu_per_event(old_run, old[per_hour * (30 + hour) :][:per_hour]))
    median_a, median_b = statistics.median(a), statistics.median(b)
    print(
        f"reading path alone ({args.sensors} sensors, batches of {BATCH}): "
        f"A {median_a:.0f} µs/event ({min(a):.0f}–{max(a):.0f}), "
        f"B {median_b:.0f} µs/event ({min(b):.0f}–{max(b):.0f}), B/A {median_b / median_a:.2f}"
    )


if __name__ == "__main__":
    main()
