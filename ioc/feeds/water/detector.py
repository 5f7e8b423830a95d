"""Water's detector metrics: each parameter as measured, the VN_WQI of the sample, and each statistical
rule's parameter scored by the general detector (water.do_unusual: dissolved oxygen).

State (``state["feed"]``): ``series`` (rule id → ``[epoch of the last sample scored,
general.new_series()]``): what the general detector has learned of the station's parameter — its slow
and fast levels, its usual one-step change and its own history of each hour of the day. Kept only for
the stations the rule applies to (its ``water_classes``).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from ioc.detectors import general
from ioc.detectors.feed import FeedDetector, Metrics, series_params
from ioc.indices.water import WQI_VARIANTS, WqiVariant, vn_wqi
from ioc.models import Event
from ioc.models.anomaly import RuleKind

# A station samples every parameter every 15 minutes (the water rules' window): the series' cadence.
SAMPLE_SECONDS = 900
RESUME_AFTER = 3  # samples missed, after which the series resumes (its last points are hours old)

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
            (rule, series_params(rule, SAMPLE_SECONDS))
            for rule in core.rules_by_feed[feed]
            if rule.kind == RuleKind.statistical and "field" in rule.params
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
            self._score(state, event, at, epoch, values, metrics)

    def _score(
        self,
        state: dict[str, Any],
        event: Event,
        at: datetime,
        epoch: float,
        values: dict[str, float],
        metrics: Metrics,
    ) -> None:
        """Each statistical rule's parameter, scored by the general detector from the station's past
        only, then learned: a fall no dawn of its own has shown (the hour-of-day view), a break far
        beyond its usual change between samples (the jump view, which scores from the second hour), a
        level it has not taken lately. The score before the detector's hold-off after a report: the
        condition's hysteresis and hold make one alert of an episode, and must see it go on."""
        if state["health"]["pending"] or metrics["identical_minutes"][2]:
            return  # a suspect reading (a spike must not teach the series), or a stuck sensor's repeat
        moment = at.astimezone(self.core.zone)
        for rule, params in self._series_rules:
            value = values.get(str(rule.params["field"]))
            if value is None or not self.core.rule_applies(rule, self.feed, event.sensor_id):
                continue
            kept = state["feed"].setdefault("series", {})
            if (entry := kept.get(rule.id)) is None:
                entry = kept[rule.id] = [epoch, general.new_series()]
            elif epoch <= entry[0]:
                continue  # a late sample: the series is judged in time order
            last, series = entry
            entry[0] = epoch
            logged = math.log1p(value)
            if epoch - last > RESUME_AFTER * SAMPLE_SECONDS:
                general.resume(series, logged)
            normal = general.expected(series, params, moment)
            scored = general.score_with(series, params, logged, moment, damped=False)
            if params.direction == -1 and normal is not None and logged >= normal:
                # At or above the hour's normal no fall is news: the variance view, which watches both
                # ways, would report a sudden rise (a probe cleaned of its fouling) as a drop.
                scored = 0.0
            breached, cleared = self.core.conditions[rule.id].judge(scored)
            usual = math.expm1(normal) if normal is not None else None
            metrics[rule.metric] = (at, epoch, scored, breached, cleared, usual, None, None)

    def index(self, state: dict[str, Any], event: Event, metrics: Metrics) -> dict[str, Any] | None:
        if (found := metrics.get("vn_wqi")) is not None and found[2] is not None:
            return {"value": found[2], "band": found[6]}
        return None
