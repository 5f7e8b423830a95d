"""``ioc index``: the official indices offline (VN_AQI, VN_WQI), CSV in, CSV out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

index_app = typer.Typer(
    help="Compute the official indices offline (VN_AQI, VN_WQI): CSV in, CSV out.", no_args_is_help=True
)
console = Console(stderr=True)

InputCsv = Annotated[
    Path,
    typer.Option(
        "--input", exists=True, dir_okay=False, help="CSV: station,time, then one column per measure."
    ),
]
OutputCsv = Annotated[Path | None, typer.Option("--output", help="Write here instead of stdout.")]


def _write_index(rows: list, output: Path | None) -> None:
    from ioc.indices.offline import write_index_rows

    if output is None:
        write_index_rows(rows, sys.stdout)
    else:
        with output.open("w", encoding="utf-8", newline="") as out:
            write_index_rows(rows, out)
    missing = [row for row in rows if row.index is None]
    if missing:
        console.print(
            f"{len(missing)} of {len(rows)} rows have no index, e.g. {missing[0].note}",
            highlight=False,
            soft_wrap=True,
        )


@index_app.command("air")
def index_air(
    input_csv: InputCsv,
    daily: Annotated[bool, typer.Option(help="One index per station and local day (01:00–24:00).")] = False,
    output: OutputCsv = None,
) -> None:
    """VN_AQI per station and hour (NowCast for PM), or per day with --daily; µg/m³ in."""
    from ioc.indices.offline import OfflineInputError, air_index_rows

    with input_csv.open(encoding="utf-8-sig", newline="") as source:
        try:
            rows = air_index_rows(source, daily=daily)
        except OfflineInputError as error:
            raise typer.BadParameter(str(error), param_hint="--input") from None
    _write_index(rows, output)


@index_app.command("water")
def index_water(
    input_csv: InputCsv,
    variant: Annotated[
        str, typer.Option(help="Last factor: cube_root = [WQI_IV²·WQI_V]^(1/3), sqrt = √(WQI_IV·WQI_V).")
    ] = "cube_root",
    output: OutputCsv = None,
) -> None:
    """VN_WQI per sample; parameter columns named as in the water feed (ph, bod5, …)."""
    from ioc.indices.offline import OfflineInputError, water_index_rows
    from ioc.indices.water import WQI_VARIANTS

    if variant not in WQI_VARIANTS:
        raise typer.BadParameter(f"use {' or '.join(WQI_VARIANTS)}", param_hint="--variant")
    with input_csv.open(encoding="utf-8-sig", newline="") as source:
        try:
            rows = water_index_rows(source, variant=variant)
        except OfflineInputError as error:
            raise typer.BadParameter(str(error), param_hint="--input") from None
    _write_index(rows, output)
