"""NAB corpus: the general detector's scores per folder and profile, over every file of a NAB folder.

    python benchmarks/nab_corpus.py                         # ../shared/data/nab, the general detector
    python benchmarks/nab_corpus.py --data DIR --detector baseline
    python benchmarks/nab_corpus.py --set refractory_steps=0 --per-file   # an ablation: one change
    python benchmarks/nab_corpus.py --scores-from NAB/results/ARTime      # published result files

The same code as ``ioc detect --nab DIR``; ``--set`` changes a ``GeneralParams`` field for every file
alike (an ablation, never a per-file setting). ``--json FILE`` writes the scores for comparisons.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ioc.detectors import general
from ioc.detectors.offline import format_nab_report, nab_benchmark, nab_report_json

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"


def parse_setting(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    fields = {field.name for field in dataclasses.fields(general.GeneralParams)}
    if name not in fields:
        raise argparse.ArgumentTypeError(f"{name!r} is not one of {', '.join(sorted(fields))}")
    number = float(value)
    return name, int(number) if number.is_integer() and "." not in value else number


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
    args = parser.parse_args()
    base = dataclasses.replace(general.GeneralParams(), **dict(args.settings))
    report = nab_benchmark(args.data, args.detector, scores_from=args.scores_from, base=base)
    print(format_nab_report(report, per_file=args.per_file))
    if args.json:
        args.json.write_text(nab_report_json(report) + "\n")


if __name__ == "__main__":
    main()
