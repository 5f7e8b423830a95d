"""``ioc detect``: a detector over one recorded series, as if streaming; or NAB scoring of a folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)


def detect(
    input_csv: Annotated[
        Path | None,
        typer.Option(
            "--input", exists=True, dir_okay=False, help="CSV timestamp,value (naive or with offset)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="CSV timestamp,value,anomaly_score,is_anomaly; stdout when omitted.")
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="What the series is (speed, travel_time, occupancy, flow, ridership, pm25, …): "
            "sets which direction of change matters. Default: a series of unknown kind, both."
        ),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="anomaly_score from which is_anomaly is 1 [the alarm level, 0.5].")
    ] = None,
    nab_dir: Annotated[
        Path | None,
        typer.Option(
            "--nab",
            exists=True,
            file_okay=False,
            help="Instead: measure the detector on every file of this NAB-layout folder "
            "(<folder>/<file>.csv, combined_windows.json, profiles.json optional).",
        ),
    ] = None,
    detector: Annotated[
        str, typer.Option(help="general (one configuration per kind of metric) or baseline (the stream's).")
    ] = "general",
    results_out: Annotated[
        Path | None,
        typer.Option("--results-out", file_okay=False, help="With --nab: write NAB result files here."),
    ] = None,
    scores_from: Annotated[
        Path | None,
        typer.Option(
            "--scores-from",
            exists=True,
            file_okay=False,
            help="With --nab: score a published detector's result files (NAB's results/<detector>).",
        ),
    ] = None,
    per_file: Annotated[bool, typer.Option("--per-file", help="With --nab: each file's score too.")] = False,
) -> None:
    """Score a recorded series with an anomaly detector, as if streaming (or measure it on NAB)."""
    from ioc.detectors.offline import (
        DEFAULT_THRESHOLD,
        NabLayoutError,
        detect_stream,
        format_nab_report,
        make_scorer,
        nab_benchmark,
    )

    if nab_dir is not None:
        try:
            report = nab_benchmark(nab_dir, detector, results_out=results_out, scores_from=scores_from)
        except NabLayoutError as error:
            raise typer.BadParameter(str(error), param_hint="--nab") from None
        typer.echo(format_nab_report(report, per_file=per_file))
        return
    if input_csv is None:
        raise typer.BadParameter("give --input (or --nab DIR)", param_hint="--input")
    try:
        scorer = make_scorer(detector, metric)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--metric/--detector") from None
    cut = DEFAULT_THRESHOLD if threshold is None else threshold
    with input_csv.open(encoding="utf-8-sig", newline="") as source:
        try:
            if output is None:
                rows = detect_stream(source, sys.stdout, scorer, cut)
            else:
                with output.open("w", encoding="utf-8", newline="") as target:
                    rows = detect_stream(source, target, scorer, cut)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--input") from None
    console.print(f"{rows:,} rows scored" + (f" into {output}" if output else ""))
