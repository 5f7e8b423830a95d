"""``ioc detect``: the statistical detector over one recorded series, as if streaming; or NAB scoring."""

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
            "sets which direction of change matters. Default: both."
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
            help="Instead: measure the detector on NAB data in this folder.",
        ),
    ] = None,
) -> None:
    """Score a recorded series with the statistical detector, as if streaming (or measure it on NAB)."""
    from ioc.detectors.baseline import params_for_metric
    from ioc.detectors.offline import DEFAULT_THRESHOLD, detect_stream, format_nab_report, nab_benchmark

    if nab_dir is not None:
        typer.echo(format_nab_report(nab_benchmark(nab_dir)))
        return
    if input_csv is None:
        raise typer.BadParameter("give --input (or --nab DIR)", param_hint="--input")
    try:
        params = params_for_metric(metric)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--metric") from None
    cut = DEFAULT_THRESHOLD if threshold is None else threshold
    with input_csv.open(encoding="utf-8-sig", newline="") as source:
        try:
            if output is None:
                rows = detect_stream(source, sys.stdout, params, cut)
            else:
                with output.open("w", encoding="utf-8", newline="") as target:
                    rows = detect_stream(source, target, params, cut)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--input") from None
    console.print(f"{rows:,} rows scored" + (f" into {output}" if output else ""))
