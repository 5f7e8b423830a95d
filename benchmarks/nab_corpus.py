"""NAB corpus: the general detector's scores per folder and profile, over every file of a NAB folder.

    python benchmarks/nab_corpus.py                         # ../shared/data/nab, the general detector
    python benchmarks/nab_corpus.py --data DIR --detector baseline
    python benchmarks/nab_corpus.py --set refractory_steps=0 --per-file   # an ablation: one change
    python benchmarks/nab_corpus.py --scores-from NAB/results/ARTime      # published result files
    python benchmarks/nab_corpus.py --cost                # also: CPU µs per reading, state size

The same code as ``ioc detect --nab DIR``; ``--set`` changes a ``GeneralParams`` field for every file
alike (an ablation, never a per-file setting). ``--json FILE`` writes the scores for comparisons.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from ioc.detectors import general
from ioc.detectors.offline import format_nab_report, nab_benchmark, nab_files, nab_report_json, read_series

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"


def parse_setting(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    fields = {field.name for field in dataclasses.fields(general.GeneralParams)}
    if name not in fields:
        raise argparse.ArgumentTypeError(f"{name!r} is not one of {', '.join(sorted(fields))}")
    number = float(value)
    return name, int(number) if number.is_integer() and "." not in value else number


def detector_cost(data: Path, base: general.GeneralParams) -> str:
    """The general detector's CPU time per reading over the folder's largest file (CPU time, not wall
    time: the machine is shared), and its state's size once it has seen the whole file."""
    windows, _ = nab_files(data)
    largest = max(windows, key=lambda name: (data / name).stat().st_size)
    with (data / largest).open(encoding="utf-8-sig", newline="") as source:
        points = [(row.timestamp, row.value) for row in read_series(source)]
    best = float("inf")
    for _ in range(3):
        state = general.new_state(base)
        started = time.process_time()
        for moment, value in points:
            general.score_value(state, value, moment)
        best = min(best, time.process_time() - started)
    numbers = json.dumps({key: value for key, value in state.items() if key != "params"})
    return (
        f"cost: {1e6 * best / len(points):.1f} µs CPU per reading ({largest}, {len(points):,} readings, "
        f"best of 3); state {len(json.dumps(state)):,} bytes of JSON, "
        f"{len(numbers):,} without its parameters"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--detector", default="general")
    parser.add_argument("--scores-from", type=Path)
    parser.add_argument("--set", type=parse_setting, action="append", default=[], dest="settings")
    parser.add_argument("--per-file", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cost", action="store_true", help="also the detector's CPU time per reading")
    args = parser.parse_args()
    base = dataclasses.replace(general.GeneralParams(), **dict(args.settings))
    report = nab_benchmark(args.data, args.detector, scores_from=args.scores_from, base=base)
    print(format_nab_report(report, per_file=args.per_file))
    if args.cost:
        print(detector_cost(args.data, base))
    if args.json:
        args.json.write_text(nab_report_json(report) + "\n")


if __name__ == "__main__":
    main()
