"""Water's detector metrics: each parameter as measured, the VN_WQI of the sample, and each statistical
rule's parameter scored by the general detector (water.do_unusual: dissolved oxygen).

State (``state["feed"]``): ``series`` (rule id → ``[epoch of the last sample scored,
general.new_series()]``): what the general detector has learned of the station's parameter — its slow
and fast levels, its usual one-step change and its own history of each hour of the day. Kept only for
the stations the rule applies to (its ``water_classes``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from ioc.detectors.feed import FeedDetector, Metrics, scorable, score_reading, series_params, series_rules
from ioc.indices.water import WQI_VARIANTS, WqiVariant, vn_wqi
from ioc.models import Event

# A station samples every parameter every 15 minutes (the water rules' window): the series' cadence.
SAMPLE_SECONDS = 900

if TYPE_CHECKING:
    from ioc.detectors.sensor import SensorDetector


class Detector(FeedDetector):
    def __init__(self, core: SensorDetector, feed: str) -> None:
        super().__init__(core, feed)
        self.metrics = core.metrics_by_feed[feed]
        wqi_rule = next((r for r in core.rules_by_feed[feed] if r.metric == "vn_wqi"), None)
        wqi_params = wqi_rule.params if wqi_rule is not None else {}
        variant = str(wqi_params.get("wqi_variant", "cube_root"))
        if variant not in WQI_VARIANTS:
            raise ValueError(f"wqi_variant {variant!r}: use one of {', '.join(WQI_VARIANTS)}")
        self._wqi_variant = cast(WqiVariant, variant)
        # A parameter of every sample, scored by the general detector (water.do_unusual: the DO).
        self._series_rules = [
            (rule, series_params(rule, SAMPLE_SECONDS)) for rule in series_rules(core.rules_by_feed[feed])
        ]

    def measure(
        self,
        state: dict[str, Any],
        event: Event,
        at: datetime,
        epoch: float,
        values: dict[str, float],
        metrics: Metrics,
    ) -> None:
        """Each parameter as measured, and the VN_WQI of the sample: a station samples every parameter
        at once, so one reading is one sample, and a sample short of the index's data (3 of its 5
        groups, 3 parameters in group IV) gives no index rather than a guess."""
        for name in self.metrics:
            if (value := values.get(name)) is not None:
                metrics[name] = (at, epoch, value, *self.core.judge(name, value), None, None, None)
        # Every station's index is shown; the rule judges only the classes it names (``_applies``).
        index = vn_wqi(values, self._wqi_variant)
        if index.value is not None and index.band is not None:
            value = float(index.value)
            metrics["vn_wqi"] = (
                at,
                epoch,
                value,
                *self.core.judge("vn_wqi", value),
                None,
                index.band.key,
                None,
            )
        if self._series_rules:
            self._score(state, event, at, values, metrics)

    def _score(
        self, state: dict[str, Any], event: Event, at: datetime, values: dict[str, float], metrics: Metrics
    ) -> None:
        """Each statistical rule's parameter, scored by the general detector from the station's past
        only, then learned (``ioc.detectors.feed.score_reading``): a fall no dawn of its own has shown
        (the hour-of-day view), a break far beyond its usual change between samples (the jump view,
        which scores from the second hour), a level it has not taken lately."""
        if not scorable(state, metrics):
            return
        for rule, params in self._series_rules:
            value = values.get(str(rule.params["field"]))
            if value is None or not self.core.rule_applies(rule, self.feed, event.sensor_id):
                continue
            kept = state["feed"].setdefault("series", {})  # only at the stations the rule judges
            condition = self.core.conditions[rule.id]
            found = score_reading(kept, rule.id, params, condition, at, value, SAMPLE_SECONDS, self.core.zone)
            if found is not None:
                metrics[rule.metric] = found

    def index(self, state: dict[str, Any], event: Event, metrics: Metrics) -> dict[str, Any] | None:
        if (found := metrics.get("vn_wqi")) is not None and found[2] is not None:
            return {"value": found[2], "band": found[6]}
        return None
