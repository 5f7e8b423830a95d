"""Transit's detector metrics: each completed 15-minute bin's taps against the station's normal for
that time of the week, scored by the general detector (crowding), and gates silent while riders are
expected (gates offline).

State (``state["feed"]``): ``bin`` (``[start, taps]``), ``last_tap`` (epoch), ``normal`` (taps per
quarter of the day, weekdays then weekends; null where unseen), ``series`` (rule id → ``[epoch of the
last bin scored, general.new_series()]``): what the general detector has learned of the station's
crowding series, ``log((taps + k) / (normal + k))`` per completed bin (``k``: the rule's
``min_normal_taps``) — its slow and fast levels, its usual one-step change, its records.
"""

from __future__ import annotations

import copy
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ioc.detectors import general
from ioc.detectors.feed import FeedDetector, Metric, Metrics, series_params
from ioc.models import Event

if TYPE_CHECKING:
    from ioc.detectors.sensor import SensorDetector

BIN = 15 * 60  # ridership bins
QUARTERS = 24 * 4  # bins in a day: a station's normal has one per quarter, for weekdays and weekends
FALLBACK_BINS = 4  # a first day borrows the normal of the hour before
BIN_ALPHA = 0.3  # weight of the newest bin in a station's normal for its time of the week
REMEMBERED_BINS = 100_000  # local time of so many bins kept (about 3 years)
CROWDING = "taps_score"
PROBE_RATIO = 2.0  # a partial bin at this many times the normal (taps + k) is scored on a copy
RESUME_AFTER = 4  # bins without a score (gates out): a gap, after which the series resumes


class Detector(FeedDetector):
    def __init__(self, core: SensorDetector, feed: str) -> None:
        super().__init__(core, feed)
        self.zone = core.zone
        self._crowding_rule = crowding = core.rule_by_metric.get(CROWDING)
        self._min_normal_taps = float(crowding.params.get("min_normal_taps", 10)) if crowding else 10.0
        self._params = series_params(crowding, BIN) if crowding is not None else None  # at the bins' cadence
        self._slots: dict[int, int] = {}  # bin (epoch // BIN) → its slot of a station's normal

    def observe(self, state: dict[str, Any], event: Event, at: datetime, epoch: float) -> Metrics:
        """Counts the tap in its 15-minute bin. A completed bin is scored for crowding and learned; a
        busy partial bin (already ``PROBE_RATIO`` times the normal) is scored on a copy of the series,
        not learned: it may open an episode, only completed bins may close one. A partial count is at
        most the completed bin's, so a partial bin breaches only where its completed bin would."""
        station = state["feed"]
        metrics = self._roll_bins(state, epoch, learn=True)
        station["bin"][1] += 1
        taps = station["bin"][1]
        station["last_tap"] = max(station.get("last_tap") or epoch, epoch)
        if CROWDING not in metrics and not self.core.is_firing(state, CROWDING):
            start = station["bin"][0]
            normal = self._normal_taps(station, start) if self._params is not None else None
            k = self._min_normal_taps
            busy = normal is not None and taps + k >= PROBE_RATIO * (normal + k)
            if busy and (probed := self._crowding(state, start, taps, learn=True, probe_at=epoch)):
                metrics[CROWDING] = probed
        metrics["taps"] = (None, epoch, float(taps), False, True, None, None, None)
        return metrics

    def _roll_bins(self, state: dict[str, Any], epoch: float, *, learn: bool) -> Metrics:
        """Close the station's bins that ended by ``epoch``: the last one is judged for crowding, and all
        are learned as the station's normal — empty ones too (a quiet night is normal), but not while the
        gates are out (an outage is not the normal)."""
        station = state["feed"]
        start = int(epoch // BIN * BIN)
        if "bin" not in station:
            station["bin"] = [start, 0]
        done_start, done_count = station["bin"]
        if start <= done_start:
            return {}
        judged = self._crowding(state, done_start, done_count, learn=learn)
        if learn and not self.core.is_firing(state, "taps"):
            self._learn_bin(station, done_start, done_count)
            for empty in range(done_start + BIN, start, BIN):
                self._learn_bin(station, empty, 0)
        station["bin"] = [start, 0]
        return {CROWDING: judged} if judged is not None else {}

    def _crowding(
        self, state: dict[str, Any], start: int, count: int, *, learn: bool, probe_at: float | None = None
    ) -> Metric | None:
        """The completed bin's taps against the station's normal for that quarter of the week, as
        ``log((taps + k) / (normal + k))``, scored by the general detector from its past, then learned.
        The normal takes out the station's rhythm (nights, service start, rush hours); what is left is
        flat, so a surge (ten times the usual) is a break far beyond the usual one-step change (the jump
        view, scoring from the first hours) and a level the series has not taken (the slow view). Not
        while the gates are out (``learn`` false): an outage is not the station's normal. ``probe_at``:
        a partial bin at that instant, scored on a copy of the series (nothing learned), never clearing."""
        if self._params is None or not learn or self.core.is_firing(state, "taps"):
            return None
        station = state["feed"]
        epoch = start + BIN
        normal = self._normal_taps(station, start)
        if normal is None:
            return None  # no judgement without a normal
        k = self._min_normal_taps
        value = math.log((count + k) / (normal + k))
        kept = station.setdefault("series", {})
        if (entry := kept.get(self._crowding_rule.id)) is None:
            if probe_at is not None:
                return None
            entry = kept[self._crowding_rule.id] = [epoch, general.new_series()]
        elif epoch <= entry[0]:
            return None
        last, series = entry
        if probe_at is None:
            entry[0] = epoch
        else:
            series = copy.deepcopy(series)
        if epoch - last > RESUME_AFTER * BIN:
            general.resume(series, value)
        moment = datetime.fromtimestamp(start, self.zone)
        scored = general.score_with(series, self._params, value, moment, damped=False)
        breached, cleared = self.core.judge(CROWDING, scored)
        if probe_at is not None:
            return (None, probe_at, scored, breached, False, normal, None, None)
        return (None, epoch, scored, breached, cleared, normal, None, None)

    def tick(self, state: dict[str, Any], sensor_id: str, now: datetime, epoch: float) -> Metrics:
        """A station whose gates have been silent for a whole bin while its normal says riders should
        have tapped: so many (``min_expected_taps``) that the silence is no accident — riders come in
        bursts with the trains, so a short gap proves nothing. Judged before the silent bins are learned,
        so an outage does not become the normal."""
        station = state["feed"]
        last = station.get("last_tap")
        rule = self.core.rule_by_metric.get("taps")
        metrics: Metrics = {}
        if (
            last is not None
            and rule is not None
            and epoch - last >= BIN
            and self._in_service(sensor_id, last, epoch)
        ):
            expected = self._expected_taps(station, last, epoch)
            if expected >= float(rule.params.get("min_expected_taps", 10)):
                metrics["taps"] = (None, epoch, 0.0, True, False, expected, None, last)
        metrics.update(self._roll_bins(state, epoch, learn="taps" not in metrics))
        return metrics

    def _in_service(self, sensor_id: str, first: float, last: float) -> bool:
        """Whether a line serving the station runs from ``first`` to ``last`` (one local service day)."""
        begin, end = datetime.fromtimestamp(first, self.zone), datetime.fromtimestamp(last, self.zone)
        sensor = self.core.city.sensor(sensor_id)
        for line_id in sensor.lines if sensor else ():
            line = self.core.city.line(line_id)
            if (
                line
                and begin.date() == end.date()
                and line.service_start <= begin.time()
                and end.time() < line.service_end
            ):
                return True
        return False

    def _slot(self, epoch: float) -> int:
        """The position in a station's normal of the bin holding ``epoch``: weekday or weekend, and the
        local quarter of an hour — riders keep a weekly rhythm, and the last quarter before the service
        ends is nothing like the one before it. Remembered per bin where the zone's offset holds through
        the bin and is whole quarters (else worked out each time)."""
        key = int(epoch // BIN)
        slot = self._slots.get(key)
        if slot is None:
            start = key * BIN
            offset = datetime.fromtimestamp(start, self.zone).utcoffset()
            if offset != datetime.fromtimestamp(start + BIN - 1, self.zone).utcoffset() or (
                offset is None or offset.total_seconds() % BIN
            ):
                return _slot_at(epoch, self.zone)
            if len(self._slots) >= REMEMBERED_BINS:
                self._slots.clear()
            slot = self._slots[key] = _slot_at(start, self.zone)
        return slot

    def _learn_bin(self, station: dict[str, Any], start: int, count: int) -> None:
        normals: list[float | None] = station.setdefault("normal", [None] * (2 * QUARTERS))
        slot = self._slot(start)
        previous = normals[slot]
        normals[slot] = count if previous is None else (1 - BIN_ALPHA) * previous + BIN_ALPHA * count

    def _expected_taps(self, station: dict[str, Any], first: float, last: float) -> float:
        """Taps the station's normal expects between two instants (0 where it has no normal)."""
        total, moment = 0.0, first
        while moment < last:
            bin_end = (moment // BIN + 1) * BIN
            span = min(bin_end, last) - moment
            total += (self._normal_taps(station, moment) or 0.0) * span / BIN
            moment = bin_end
        return total

    def _normal_taps(self, station: dict[str, Any], epoch: float) -> float | None:
        """The station's usual taps per bin at this time of the week. Until it has seen this quarter on
        this kind of day: the same quarter on the other kind of day, else the latest quarter it has seen
        in the hour before (a first day), else None — no judgement without a normal."""
        normals: list[float | None] | None = station.get("normal")
        if normals is None:
            return None
        slot = self._slot(epoch)
        for candidate in (slot, (slot + QUARTERS) % (2 * QUARTERS)):
            if (normal := normals[candidate]) is not None:
                return normal
        for back in range(1, FALLBACK_BINS + 1):
            if (normal := normals[self._slot(epoch - back * BIN)]) is not None:
                return normal
        return None

    def index(self, state: dict[str, Any], event: Event, metrics: Metrics) -> dict[str, Any] | None:
        return {"value": float(state["feed"]["bin"][1]), "band": None}


def _slot_at(epoch: float, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(epoch, zone)
    return (QUARTERS if local.weekday() >= 5 else 0) + local.hour * 4 + local.minute // 15
