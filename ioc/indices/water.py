"""Water quality: VN_WQI (Decision 1460/QĐ-TCMT, 2019) and the QCVN 08:2023 river class.

The tables are data, in ``vn_wqi.yaml`` beside this module (read it for the caveats on their sources).
A sample is a mapping of parameter name → value; names are the water feed's fields (``ph``,
``dissolved_oxygen`` mg/L with ``temperature`` °C, ``bod5``, ``cod``, ``toc``, ``nh4_n``, ``no3_n``,
``no2_n``, ``po4_p`` mg/L, ``coliform``, ``e_coli`` MPN/100 mL) plus optional extras for offline use:
``dissolved_oxygen_percent`` (% saturation, used as is), metals in mg/L (``arsenic``, ``cadmium``, ``lead``,
``chromium_vi``, ``copper``, ``zinc``, ``mercury``), pesticides in µg/L (``aldrin``, ``bhc``, ``dieldrin``,
``ddts``, ``heptachlor`` = heptachlor and heptachlor epoxide), and for QCVN 08 ``tss``, ``total_p``,
``total_n`` mg/L. Other keys are ignored.

VN_WQI = (WQI_I/100)·(WQI_II/100)·(WQI_III/100)·F, rounded half up, a missing group I–III counting 1.
The last factor F is where implementations differ, so it is a parameter:
``"cube_root"`` (default) F = [WQI_IV²·WQI_V]^(1/3); ``"sqrt"`` F = √(WQI_IV·WQI_V).
Without group V both use F = WQI_IV (what the √ variant does; the decision's text as we have it is silent).
An index needs 3 of the 5 groups and group IV with 3 parameters; otherwise the result says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Literal

import yaml

from ioc.indices.rounding import round_half_up

WqiVariant = Literal["cube_root", "sqrt"]
WQI_VARIANTS: tuple[str, ...] = ("cube_root", "sqrt")
GROUPS = ("I", "II", "III", "IV", "V")
QCVN08_CLASSES = ("A", "B", "C", "D")


@dataclass(frozen=True)
class WqiBand:
    key: str
    name_vi: str
    name_en: str
    colour: str
    rgb: tuple[int, int, int]
    lowest: int
    fit_for_vi: str
    fit_for_en: str


@dataclass(frozen=True)
class WqiResult:
    """A VN_WQI, or why there is none (``insufficient``); sub-indices and group values either way."""

    value: int | None
    band: WqiBand | None
    dominant: str | None  # the parameter with the lowest sub-index: what pulls the index down
    sub_indices: dict[str, float]
    groups: dict[str, float]
    variant: str
    insufficient: str | None = None

    @property
    def sufficient(self) -> bool:
        return self.insufficient is None


@cache
def wqi_tables() -> dict[str, Any]:
    """The parsed ``vn_wqi.yaml``."""
    return yaml.safe_load(files("ioc.indices").joinpath("vn_wqi.yaml").read_text(encoding="utf-8"))


def _parameter(name: str) -> dict[str, Any]:
    parameters = wqi_tables()["parameters"]
    if name not in parameters:
        raise ValueError(f"no VN_WQI sub-index for {name!r}: use one of {', '.join(parameters)}")
    return parameters[name]


def wqi_parameters() -> dict[str, str]:
    """Every VN_WQI parameter name → its group (I–V), in table order."""
    return dict(_group_of())


@cache
def _group_of() -> dict[str, str]:
    """``wqi_parameters``, once: every sample reads it (not to be changed)."""
    return {name: spec["group"] for name, spec in wqi_tables()["parameters"].items()}


def do_saturation(temperature_c: float) -> float:
    """Saturation dissolved oxygen in fresh water, mg/L, at ``temperature_c`` °C."""
    return sum(c * temperature_c**power for power, c in enumerate(wqi_tables()["do_saturation_coefficients"]))


def do_percent_saturation(dissolved_oxygen_mg_l: float, temperature_c: float) -> float:
    """Dissolved oxygen as % of saturation."""
    return 100 * dissolved_oxygen_mg_l / do_saturation(temperature_c)


def _piecewise(value: float, x: Sequence[float], q: Sequence[float], below: float, above: float) -> float:
    if value < x[0]:
        return below
    if value > x[-1]:
        return above
    # A repeated x is a step: the first segment of positive width that holds the value decides.
    for i in range(len(x) - 1):
        if x[i] < x[i + 1] and x[i] <= value <= x[i + 1]:
            return q[i] + (q[i + 1] - q[i]) * (value - x[i]) / (x[i + 1] - x[i])
    raise ValueError(f"table without a segment for {value}: check vn_wqi.yaml")


def wqi_sub_index(parameter: str, value: float) -> float:
    """Sub-index q (10–100) of one parameter; ``dissolved_oxygen_percent`` for DO, in % saturation."""
    spec = _parameter(parameter)
    if math.isnan(value) or value < 0:
        raise ValueError(f"{parameter}: value must be a number ≥ 0, got {value}")
    tables = wqi_tables()
    if spec["kind"] == "step":
        step = tables["step_q"]
        return float(step["at_or_below"] if value <= spec["limit"] else step["above"])
    if spec["kind"] == "falling":
        falling_q = tables["falling_q"]
        return float(_piecewise(value, spec["x"], falling_q, falling_q[0], falling_q[-1]))
    return float(_piecewise(value, spec["x"], spec["q"], spec["below"], spec["above"]))


def wqi_sub_indices(sample: Mapping[str, float | None]) -> dict[str, float]:
    """Sub-index of every VN_WQI parameter the sample has, in table order. DO% comes from
    ``dissolved_oxygen_percent`` or else from ``dissolved_oxygen`` and ``temperature``."""
    values = {name: value for name, value in sample.items() if value is not None}
    oxygen, temperature = values.get("dissolved_oxygen"), values.get("temperature")
    if "dissolved_oxygen_percent" not in values and oxygen is not None and temperature is not None:
        values["dissolved_oxygen_percent"] = do_percent_saturation(oxygen, temperature)
    return {name: wqi_sub_index(name, values[name]) for name in _group_of() if name in values}


def wqi_groups(sub_indices: Mapping[str, float]) -> dict[str, float]:
    """WQI of each group present: geometric mean for I–III, arithmetic for IV–V (as the table says)."""
    group_of = _group_of()
    groups: dict[str, float] = {}
    for group in GROUPS:
        members = [q for name, q in sub_indices.items() if group_of[name] == group]
        if not members:
            continue
        if wqi_tables()["groups"][group]["mean"] == "geometric":
            groups[group] = math.prod(members) ** (1 / len(members))
        else:
            groups[group] = sum(members) / len(members)
    return groups


def wqi_insufficiency(sub_indices: Mapping[str, float]) -> str | None:
    """Why these sub-indices cannot make a VN_WQI, or None when they can."""
    rule = wqi_tables()["sufficiency"]
    group_of = _group_of()
    present = [group for group in GROUPS if any(group_of[name] == group for name in sub_indices)]
    required = rule["required_group"]
    in_required = [name for name in sub_indices if group_of[name] == required]
    if len(present) < rule["min_groups"]:
        listed = ", ".join(present) or "none"
        return f"{len(present)} of 5 parameter groups ({listed}); VN_WQI needs at least {rule['min_groups']}"
    if len(in_required) < rule["min_required_group_parameters"]:
        listed = ", ".join(in_required) or "none"
        return (
            f"group {required} has {len(in_required)} parameters ({listed}); "
            f"VN_WQI needs at least {rule['min_required_group_parameters']}"
        )
    return None


def combine_wqi_groups(groups: Mapping[str, float], variant: WqiVariant = "cube_root") -> float:
    """VN_WQI (unrounded) from the group values; group IV is required."""
    if variant not in WQI_VARIANTS:
        raise ValueError(f"unknown VN_WQI variant {variant!r}: use {' or '.join(WQI_VARIANTS)}")
    if "IV" not in groups:
        raise ValueError("VN_WQI needs group IV (organics and nutrients)")
    factor = math.prod(groups.get(group, 100) / 100 for group in ("I", "II", "III"))
    organics, microbiology = groups["IV"], groups.get("V")
    if microbiology is None:
        return factor * organics
    if variant == "cube_root":
        return factor * (organics**2 * microbiology) ** (1 / 3)
    return factor * math.sqrt(organics * microbiology)


def wqi_band(value: float) -> WqiBand:
    """The VN_WQI band of an index value (rounded half up first)."""
    index = round_half_up(value)
    if index < 0:
        raise ValueError(f"VN_WQI is ≥ 0, got {value}")
    return _band_holding(index)


@cache
def _band_holding(index: int) -> WqiBand:
    spec = next(band for band in wqi_tables()["bands"] if index >= band["lowest"])
    return WqiBand(
        key=spec["key"],
        name_vi=spec["name_vi"],
        name_en=spec["name_en"],
        colour=spec["colour"],
        rgb=tuple(spec["rgb"]),
        lowest=spec["lowest"],
        fit_for_vi=spec["fit_for_vi"],
        fit_for_en=spec["fit_for_en"],
    )


def vn_wqi(sample: Mapping[str, float | None], variant: WqiVariant = "cube_root") -> WqiResult:
    """VN_WQI of one sample, or a result whose ``insufficient`` says why there is none."""
    sub_indices = wqi_sub_indices(sample)
    groups = wqi_groups(sub_indices)
    # Lowest sub-index; on a tie the first in table order.
    dominant = min(sub_indices, key=sub_indices.__getitem__) if sub_indices else None
    reason = wqi_insufficiency(sub_indices)
    if reason is not None:
        has_oxygen = sample.get("dissolved_oxygen") is not None
        if has_oxygen and "dissolved_oxygen_percent" not in sub_indices:
            reason += " (dissolved_oxygen counts only with temperature, for % saturation)"
        return WqiResult(None, None, dominant, sub_indices, groups, variant, insufficient=reason)
    value = round_half_up(combine_wqi_groups(groups, variant))
    return WqiResult(value, wqi_band(value), dominant, sub_indices, groups, variant)


def _qcvn08_parameter_class(rule: Mapping[str, Mapping[str, Any]], value: float) -> str:
    for cls in QCVN08_CLASSES[:-1]:
        if "at_most" in rule and value <= rule["at_most"][cls]:
            return cls
        if "at_least" in rule and value >= rule["at_least"][cls]:
            return cls
        if "within" in rule and rule["within"][cls][0] <= value <= rule["within"][cls][1]:
            return cls
    return QCVN08_CLASSES[-1]


def qcvn08_classes(sample: Mapping[str, float | None]) -> dict[str, str]:
    """QCVN 08:2023 river class (A best … D worst) met by each parameter the sample has.

    The class table is approximate (its public source was partly garbled); see ``vn_wqi.yaml``.
    """
    table = wqi_tables()["qcvn08_2023"]
    return {
        name: _qcvn08_parameter_class(rule, value)
        for name, rule in table.items()
        if (value := sample.get(name)) is not None
    }


def qcvn08_class(sample: Mapping[str, float | None]) -> str:
    """QCVN 08:2023 river class of a sample: the worst class over its parameters ("A" … "D").

    Uses pH, BOD5, COD, DO (mg/L), TSS, total P, total N, coliform and E. coli. The class table is
    approximate (its public source was partly garbled); a correction is one edit in ``vn_wqi.yaml``.
    """
    classes = qcvn08_classes(sample)
    if not classes:
        names = ", ".join(wqi_tables()["qcvn08_2023"])
        raise ValueError(f"no QCVN 08 parameter in the sample: give at least one of {names}")
    return max(classes.values(), key=QCVN08_CLASSES.index)
