"""Water's detector metrics: each parameter as measured, and the VN_WQI of the sample."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from ioc.detectors.feed import FeedDetector, Metrics
from ioc.indices.water import WQI_VARIANTS, WqiVariant, vn_wqi
from ioc.models import Event

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

    def index(self, state: dict[str, Any], event: Event, metrics: Metrics) -> dict[str, Any] | None:
        if (found := metrics.get("vn_wqi")) is not None and found[2] is not None:
            return {"value": found[2], "band": found[6]}
        return None
