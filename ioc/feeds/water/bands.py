"""A water parameter's history chart bands: its QCVN 08:2023/BTNMT classes A–D, for a parameter with a
one-sided limit."""

from __future__ import annotations

from ioc.city import Sensor
from ioc.history.bands import MeasureBand
from ioc.indices.current import Label
from ioc.indices.water import QCVN08_CLASSES, wqi_tables

# Classes A (best) … D: blue, green, amber, red, as the console's other good-to-bad scales run.
QCVN08_COLOURS = {"A": "#3b82f6", "B": "#22c55e", "C": "#f5a524", "D": "#e5484d"}


def measure_bands(measure: str, sensor: Sensor | None) -> tuple[str, list[MeasureBand]] | None:
    """QCVN 08's classes of ``measure``; None for a parameter without a limit or with a two-sided one."""
    rule = wqi_tables()["qcvn08_2023"].get(measure, {})
    if "at_most" not in rule and "at_least" not in rule:
        return None
    classes = QCVN08_CLASSES[:-1]
    if "at_most" in rule:  # lower is better: A from 0
        limits = [rule["at_most"][c] for c in classes]
        spans = list(zip([0.0, *limits], [*limits, None], QCVN08_CLASSES, strict=True))
    else:  # at least: higher is better, D from 0
        limits = [rule["at_least"][c] for c in reversed(classes)]
        spans = list(zip([0.0, *limits], [*limits, None], reversed(QCVN08_CLASSES), strict=True))
    bands = [
        MeasureBand(lower, upper if upper != float("inf") else None, cls,
                    Label(vi=f"QCVN 08 loại {cls}", en=f"QCVN 08 class {cls}"), QCVN08_COLOURS[cls])
        for lower, upper, cls in spans
        if lower != float("inf")
    ]  # fmt: skip
    return "QCVN 08:2023/BTNMT", bands
