"""``ioc backtest``: a candidate rule set against the current one over a recording, offline, with the
stream's own detector and alert-manager code; optionally scored against a ground truth."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from ioc.settings import Settings

if TYPE_CHECKING:
    from ioc.alerts.rules import RuleSet
    from ioc.backtest.run import Outcome, RuleSetRun
    from ioc.recording import RecordingHeader

console = Console(stderr=True)


def backtest(
    recording: Annotated[
        Path,
        typer.Argument(
            exists=True, help="A recording (.jsonl, .jsonl.gz), a feed CSV (air.csv …) or a folder of them."
        ),
    ],
    rules: Annotated[
        Path,
        typer.Option("--rules", exists=True, dir_okay=False, help="The candidate rules (YAML)."),
    ],
    baseline: Annotated[
        str | None,
        typer.Option(help="The rules to compare with: a packaged name or a YAML path [IOC_RULES]."),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Ground truth (JSON Lines, as ioc simulate --truth writes)."
        ),
    ] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Also write the report as JSON to this file; - for stdout.")
    ] = None,
) -> None:
    """Run the detectors and alert rules of a candidate and a baseline rule set over a recording and
    show how their alerts differ (and, with --truth, their recall, precision and delay)."""
    from ioc.backtest.compare import compare, render, to_json
    from ioc.backtest.run import run_rules
    from ioc.backtest.scoring import load_truth
    from ioc.city import load_city
    from ioc.recording import in_event_time_order, load_events

    settings = Settings()
    city = load_city(settings.city)
    baseline_source = baseline or settings.rules
    candidate_rules = _rules(str(rules), "--rules")
    baseline_rules = _rules(baseline_source, "--baseline")
    scenarios = None
    if truth is not None:
        try:
            scenarios = load_truth(truth)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--truth") from None

    if json_out not in (None, "-") and not Path(json_out).parent.is_dir():
        raise typer.BadParameter(f"{json_out}: its folder does not exist", param_hint="--json")

    began = time.monotonic()
    try:
        header, loaded = load_events(recording, city)
    except ValueError as error:  # RecordingError, or a CSV row the feed model rejects
        raise typer.BadParameter(str(error), param_hint="RECORDING") from None
    # The order a replay into Kafka gives: event time, ties in file order (each sensor's own order).
    events = in_event_time_order(loaded)
    console.print(f"{len(events):,} events ({', '.join(header.feeds)}) loaded from {recording}")

    started = time.monotonic()
    base = run_rules(events, baseline_rules, city, settings, baseline_source, scenarios)
    _ran("baseline", base, started)
    if candidate_rules == baseline_rules:  # the same rules give the same alerts: spare the second run
        candidate = dataclasses.replace(base, source=str(rules))
    else:
        started = time.monotonic()
        candidate = run_rules(events, candidate_rules, city, settings, str(rules), scenarios)
        _ran("candidate", candidate, started)
    elapsed = time.monotonic() - began
    comparison = compare(base, candidate)

    # JSON on stdout must stay parseable: the tables go to stderr then. Into a file or a pipe, rich
    # would wrap at 80 columns: the diff's rows need more.
    out = console if json_out == "-" else Console(width=None if sys.stdout.isatty() else 160)
    for table in render(comparison, tz=ZoneInfo(city.timezone)):
        out.print(table)
    if json_out is not None:
        report = to_json(comparison, _run_info(recording, header, base.outcome, elapsed, truth))
        text = json.dumps(report, ensure_ascii=False, indent=2) + "\n"
        if json_out == "-":
            sys.stdout.write(text)
        else:
            Path(json_out).write_text(text, encoding="utf-8")
            console.print(f"JSON report written to {json_out}")
    console.print(f"Backtest of {len(events):,} events in {elapsed:.1f} s")


def _rules(source: str, hint: str) -> RuleSet:
    import yaml

    from ioc.alerts.rules import load_rules

    try:
        return load_rules(source)
    except (OSError, ValueError, yaml.YAMLError) as error:  # no such file, bad YAML, a bad rule
        raise typer.BadParameter(f"{source}: {error}", param_hint=hint) from None


def _ran(name: str, run: RuleSetRun, started: float) -> None:
    alerts, seconds = len(run.managed.alerts), time.monotonic() - started
    rate = f", {run.outcome.events / seconds:,.0f} events/s" if seconds > 0 else ""
    console.print(f"{name} {run.source} ({run.rules.version}): {alerts:,} alerts in {seconds:.1f} s{rate}")


def _run_info(
    recording: Path, header: RecordingHeader, outcome: Outcome, seconds: float, truth: Path | None
) -> dict[str, Any]:
    return {
        "recording": str(recording),
        "source": header.source,
        "from": header.start.isoformat() if header.start else None,
        "to": header.end.isoformat() if header.end else None,
        "feeds": header.feeds,
        "events": outcome.events,
        "rejected": outcome.rejected,
        "truth": str(truth) if truth is not None else None,
        "seconds": round(seconds, 3),
    }
