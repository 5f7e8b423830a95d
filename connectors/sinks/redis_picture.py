"""The live operating picture in Redis: the newest window aggregate per sensor, by event time.

Keys (all under the configured prefix):
  ``<prefix>:agg:<feed>:<window>:<sensor>`` hash ``start``, ``count``, ``json`` (the WindowAggregate)
  ``<prefix>:sensors:<feed>`` set of sensor ids that have reported
  ``<prefix>:alert:<id>`` hash ``revision``, ``json`` (the alert as of its latest event)
  ``<prefix>:alerts`` sorted set of alert ids by episode start; ``<prefix>:alerts:unresolved`` the same,
  of the alerts not resolved yet
  ``<prefix>:incident:<id>`` hash ``revision``, ``json`` (``{"incident": …, "mergedInto": id | null}``)
  ``<prefix>:incidents``, ``<prefix>:incidents:unresolved`` sorted sets by start, like the alerts'
  (a merged or dissolved incident leaves both)
  ``<prefix>:metrics:dead-letters`` hash ``<feed>:<reason>`` → dead letters counted (at least once)
  ``<prefix>:silence:<id>`` hash ``ends`` (end, µs since the epoch), ``json`` (the Silence), from
  ``<prefix>.silences``; ``<prefix>:silences`` sorted set of silence ids by end
  ``<prefix>:audit`` sorted set of audit entry ids by time (``ioc.alerts.audit``: operators' acknowledgements
  and resolutions from ``<prefix>.alerts``, silences created and ended from ``<prefix>.silences``);
  ``<prefix>:audit:entries`` hash entry id → the AuditEntry
  ``<prefix>:stream`` stream of what the picture stored, for ``GET /v1/stream``: fields ``type``
  (``alert``, ``incident``, ``aggregate``) and ``data`` (the AlertEvent, the IncidentEvent, an aggregate's
  delta), appended by the same Lua script as the write it reports (only when that stored something),
  trimmed to the newest ``IOC_STREAM_HISTORY`` entries
Writes are compare-and-set — aggregates on (window start, count), alerts and incidents on revision,
silences on their end (a silence only ever ends earlier; each arrives once per partition) — and audit
entries have stable ids, so a replayed or reordered update never replaces a newer one nor adds a
duplicate: every key can be rebuilt from Kafka after Redis was emptied.

Readers list the sorted sets newest first, a page at a time: a :class:`Position` (score and member of
the last entry looked at) says where the next page starts, so alerts arriving meanwhile do not shift it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from connectors.redis_client import connect_async
from ioc.alerts.audit import AuditEntry
from ioc.alerts.silence import Silence
from ioc.city import UNREGISTERED_PREFIX
from ioc.models.alert import (
    Alert,
    AlertEvent,
    AlertStatus,
    Incident,
    IncidentChange,
    IncidentEvent,
    IncidentStatus,
)
from ioc.models.dead_letter import DeadLetter
from ioc.settings import Settings
from ioc.windows import PublishedWindow, WindowAggregate

# One sensor's windows (ARGV[3] of them, KEYS[3..]), each replacing the stored one only if its (start,
# count) is not older. KEYS[1]: the feed's sensor set, KEYS[2]: the stream (ARGV[2] entries kept); per
# window four ARGV from ARGV[4]: start, count, the aggregate's JSON, its delta for the stream. One call per
# sensor rather than per window: the client's packing and the server's calls were most of the picture's
# cost. Returns 1 or 0 per window: stored or not.
_WRITE_IF_NEWER = """
local n = tonumber(ARGV[3])
local result, stored_any = {}, false
for i = 1, n do
  local key, a = KEYS[2 + i], 4 * i
  local start, count = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local stored = redis.call('HMGET', key, 'start', 'count')
  local s, c = tonumber(stored[1]), tonumber(stored[2])
  if s and (s > start or (s == start and c > count)) then
    result[i] = 0
  else
    redis.call('HSET', key, 'start', ARGV[a], 'count', ARGV[a + 1], 'json', ARGV[a + 2])
    redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '*', 'type', 'aggregate', 'data', ARGV[a + 3])
    result[i], stored_any = 1, true
  end
end
if not stored_any then return result end
redis.call('SADD', KEYS[1], ARGV[1])
local extra = 4 * n + 4
if ARGV[extra] then
  -- An unregistered sensor (anyone can make one up): its windows expire after ARGV[extra] seconds, and
  -- the feed keeps at most ARGV[extra + 1] of them (KEYS[n + 3], by last write); the expired and the
  -- oldest over the cap leave the index with every window of theirs (ARGV[extra + 2 ..]: the feed's
  -- window key prefixes).
  local ttl, index = tonumber(ARGV[extra]), KEYS[n + 3]
  for i = 1, n do
    if result[i] == 1 then redis.call('EXPIRE', KEYS[2 + i], ttl) end
  end
  local now = tonumber(redis.call('TIME')[1])
  redis.call('ZADD', index, now, ARGV[1])
  local gone = redis.call('ZRANGEBYSCORE', index, '-inf', now - ttl)
  local over = redis.call('ZCARD', index) - #gone - tonumber(ARGV[extra + 1])
  if over > 0 then
    for _, id in ipairs(redis.call('ZRANGE', index, #gone, #gone + over - 1)) do
      table.insert(gone, id)
    end
  end
  for _, id in ipairs(gone) do
    redis.call('ZREM', index, id)
    redis.call('SREM', KEYS[1], id)
    for j = extra + 2, #ARGV do redis.call('DEL', ARGV[j] .. id) end
  end
end
return result
"""


# An alert or incident as of its event, unless a later revision is stored; then its place in the index
# of all (KEYS[2]) and of the unresolved (KEYS[3]): ARGV[5] is 'open', 'resolved' or 'gone' (merged away);
# and the event (ARGV[8], of type ARGV[7]) onto the stream KEYS[4], kept to ARGV[6] entries.
_RECORD_IF_NEWER = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'revision'))
local revision = tonumber(ARGV[1])
if stored and stored >= revision then return 0 end
redis.call('HSET', KEYS[1], 'revision', ARGV[1], 'json', ARGV[2])
if ARGV[5] == 'gone' then
  redis.call('ZREM', KEYS[2], ARGV[4])
else
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
end
if ARGV[5] == 'open' then
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
else
  redis.call('ZREM', KEYS[3], ARGV[4])
end
redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[6], '*', 'type', ARGV[7], 'data', ARGV[8])
return 1
"""


# A silence as of this version unless a version ending no later is stored (the versions of one silence
# only ever end earlier); then its place in the index by end.
_SILENCE_IF_NEWER = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'ends'))
local ends = tonumber(ARGV[1])
if stored and stored <= ends then return 0 end
redis.call('HSET', KEYS[1], 'ends', ARGV[1], 'json', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCAN_BUDGET = 5000  # index entries one page request looks at, at most (filters may skip most of them)
UNRESOLVED = frozenset({AlertStatus.open, AlertStatus.acknowledged})

T = TypeVar("T")


@dataclass(frozen=True)
class Position:
    """Where a page stopped in an index listed newest first: the last entry looked at."""

    score: float
    member: str

    def token(self) -> str:
        """An opaque cursor for the API."""
        return base64.urlsafe_b64encode(f"{self.score!r}|{self.member}".encode()).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> Position:
        """The position of a cursor ``token`` gave; ValueError if it is not one."""
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            score, member = text.split("|", 1)
            return cls(float(score), member)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValueError("the cursor is not one this API gave") from None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next: Position | None  # None: nothing more in the index (within the time range)


def connect(settings: Settings, **pool: float) -> Redis:
    """An asyncio client; ``pool`` options such as ``max_connections`` or ``socket_timeout`` (seconds)
    go to its connection pool."""
    return connect_async(settings, decode_responses=True, **pool)


class RedisPicture:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self._write_if_newer = redis.register_script(_WRITE_IF_NEWER)
        self._record_if_newer = redis.register_script(_RECORD_IF_NEWER)
        self._silence_if_newer = redis.register_script(_SILENCE_IF_NEWER)

    def _agg_key(self, feed: str, window: str, sensor_id: str) -> str:
        return self.settings.redis_key("agg", feed, window, sensor_id)

    def _sensors_key(self, feed: str) -> str:
        return self.settings.redis_key("sensors", feed)

    async def write_aggregate(self, aggregate: WindowAggregate) -> bool:
        """Store the aggregate unless a newer one is there; True when stored."""
        return (await self.write_aggregates([aggregate.published()]))[0]

    async def write_aggregates(self, windows: list[PublishedWindow]) -> list[bool]:
        """Store each window unless a newer one is there, in one round trip; whether each was stored."""
        settings = self.settings
        by_sensor: dict[tuple[str, str], list[int]] = {}  # (feed, sensor) → its windows' places
        for place, window in enumerate(windows):
            by_sensor.setdefault((window.feed, window.sensor_id), []).append(place)
        async with self.redis.pipeline(transaction=False) as pipe:
            for (feed, sensor_id), places in by_sensor.items():
                keys = [self._sensors_key(feed), self.stream_key]
                args: list[Any] = [sensor_id, settings.stream_history, len(places)]
                for place in places:
                    window = windows[place]
                    keys.append(self._agg_key(feed, window.window, sensor_id))
                    args += [window.start, window.count, window.json, _delta(window)]
                if sensor_id.startswith(UNREGISTERED_PREFIX):
                    keys.append(settings.redis_key("unregistered", feed))
                    args += [settings.unregistered_ttl_seconds, settings.unregistered_sensors_max]
                    args += [self._agg_key(feed, spec.label, "") for spec in settings.windows_of(feed)]
                await self._write_if_newer(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        stored = [False] * len(windows)
        for places, flags in zip(by_sensor.values(), results, strict=True):
            for place, flag in zip(places, flags, strict=True):
                stored[place] = bool(flag)
        return stored

    async def write_alert(self, event: AlertEvent) -> bool:
        """Store the alert as of this event unless a later revision is there; True when stored."""
        return (await self.write_records([event]))[0]

    async def write_incident(self, event: IncidentEvent) -> bool:
        """Store the incident as of this event unless a later revision is there; a merged or dissolved
        incident leaves the indexes (its record stays, naming ``mergedInto``)."""
        return (await self.write_records([event]))[0]

    async def write_records(self, events: Sequence[AlertEvent | IncidentEvent]) -> list[bool]:
        """Each alert or incident event as ``write_alert`` or ``write_incident`` stores it, in order, in
        one round trip; whether each was stored."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                record = _alert_record(event) if isinstance(event, AlertEvent) else _incident_record(event)
                await self._record_if_newer(
                    keys=[
                        self.settings.redis_key(record.kind, record.ident),
                        self.settings.redis_key(f"{record.kind}s"),
                        self.settings.redis_key(f"{record.kind}s", "unresolved"),
                        self.stream_key,
                    ],
                    args=[
                        record.revision,
                        record.text,
                        record.start.timestamp(),
                        record.ident,
                        record.place,
                        self.settings.stream_history,
                        record.kind,
                        record.event,
                    ],
                    client=pipe,
                )
            return [bool(stored) for stored in await pipe.execute()]

    # --- the stream of changes (GET /v1/stream) --------------------------------------------------------

    @property
    def stream_key(self) -> str:
        return self.settings.redis_key("stream")

    async def stream_newest(self) -> str:
        """The id of the newest stream entry; ``0-0`` when the stream is empty."""
        entries = await self.redis.xrevrange(self.stream_key, count=1)
        return entries[0][0] if entries else "0-0"

    async def stream_resumable(self, last_id: str) -> bool:
        """Whether every entry after ``last_id`` is still in the stream: ``last_id`` is not older than
        the first entry kept (when some were trimmed) nor beyond the newest id (an id of another stream,
        or of one Redis lost). False for a malformed id. An id that was the very last one trimmed counts
        as too old: the stream does not say which id that was."""
        mine = _stream_id(last_id)
        if mine is None:
            return False
        try:
            info = await self.redis.xinfo_stream(self.stream_key)
        except ResponseError:  # no stream yet: only the empty stream's position is still good
            return mine == (0, 0)
        if mine > (_stream_id(info["last-generated-id"]) or (0, 0)):
            return False
        if info.get("entries-added") == info["length"]:  # Redis 7: nothing was ever trimmed
            return True
        first = info.get("first-entry")
        return first is not None and (_stream_id(first[0]) or (0, 0)) <= mine

    async def stream_after(
        self, last_id: str, *, block_ms: int, count: int = 500
    ) -> list[tuple[str, str, str]]:
        """Up to ``count`` entries after ``last_id`` as (id, type, data), oldest first, waiting up to
        ``block_ms`` for one when there is none yet (then an empty list)."""
        answer = await self.redis.xread({self.stream_key: last_id}, count=count, block=block_ms)
        entries = answer[0][1] if answer else []
        return [(ident, fields["type"], fields["data"]) for ident, fields in entries]

    async def count_dead_letters(self, letters: list[DeadLetter]) -> None:
        """Add the letters to the per feed and reason counts (``late`` counts late events)."""
        counts = Counter(f"{letter.feed}:{letter.reason}" for letter in letters)
        async with self.redis.pipeline(transaction=False) as pipe:
            for field, number in counts.items():
                pipe.hincrby(self.settings.redis_key("metrics", "dead-letters"), field, number)
            await pipe.execute()

    async def latest_aggregates(self, feed: str, window: str) -> list[WindowAggregate]:
        """The newest aggregate of every sensor of ``feed`` that has reported, sorted by sensor id."""
        sensor_ids = sorted(await self.redis.smembers(self._sensors_key(feed)))
        if not sensor_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for sensor_id in sensor_ids:
                pipe.hget(self._agg_key(feed, window, sensor_id), "json")
            documents = await pipe.execute()
        return [WindowAggregate.model_validate_json(doc) for doc in documents if doc]

    async def sensor_aggregates(self, feed: str, sensor_id: str, windows: list[str]) -> list[WindowAggregate]:
        """The sensor's newest aggregate of each of ``windows`` it has one of, in that order."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for window in windows:
                pipe.hget(self._agg_key(feed, window, sensor_id), "json")
            documents = await pipe.execute()
        return [WindowAggregate.model_validate_json(doc) for doc in documents if doc]

    # --- operators: silences and the audit trail ------------------------------------------------------

    async def write_silence(self, silence: Silence) -> bool:
        """Store this version of the silence unless one ending no later is there; True when stored."""
        ends = silence.ends_at.timestamp()
        stored = await self._silence_if_newer(
            keys=[self.settings.redis_key("silence", silence.id), self.settings.redis_key("silences")],
            args=[_micros(silence.ends_at), silence.model_dump_json(by_alias=True), ends, silence.id],
        )
        return bool(stored)

    async def write_audit(self, entry: AuditEntry) -> None:
        """Add the entry to the trail; the same entry again (a replay, a copy) changes nothing."""
        text = entry.model_dump_json(by_alias=True)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.settings.redis_key("audit", "entries"), entry.id, text)
            pipe.zadd(self.settings.redis_key("audit"), {entry.id: entry.at.timestamp()})
            await pipe.execute()

    async def silence(self, silence_id: str) -> Silence | None:
        text = await self.redis.hget(self.settings.redis_key("silence", silence_id), "json")
        return Silence.model_validate_json(text) if text else None

    async def silences(self, ending_after: datetime | None = None) -> list[Silence]:
        """Every silence, or those ending after ``ending_after`` (active and future ones at that time);
        newest start first."""
        low = f"({ending_after.timestamp()!r}" if ending_after is not None else "-inf"
        ids = await self.redis.zrange(self.settings.redis_key("silences"), low, "+inf", byscore=True)
        async with self.redis.pipeline(transaction=False) as pipe:
            for silence_id in ids:
                pipe.hget(self.settings.redis_key("silence", silence_id), "json")
            texts = await pipe.execute()
        silences = [Silence.model_validate_json(text) for text in texts if text]
        return sorted(silences, key=lambda s: (s.starts_at.timestamp(), s.id), reverse=True)

    async def audit(
        self,
        *,
        after: Position | None = None,
        limit: int = 50,
        keep: Callable[[AuditEntry], bool] | None = None,
    ) -> Page[AuditEntry]:
        """The audit trail, newest first; only the entries ``keep`` accepts, when given."""
        entries = self.settings.redis_key("audit", "entries")

        async def fetch(ids: list[str]) -> list[str | None]:
            return await self.redis.hmget(entries, ids)

        def kept(record: dict[str, Any]) -> bool:
            return keep is None or keep(AuditEntry.model_validate(record))

        return await self._page(
            self.settings.redis_key("audit"), fetch, kept, AuditEntry.model_validate, after, limit
        )

    # --- alerts and incidents ------------------------------------------------------------------------

    async def alert(self, alert_id: str) -> Alert | None:
        text = await self.redis.hget(self.settings.redis_key("alert", alert_id), "json")
        return Alert.model_validate_json(text) if text else None

    async def alerts(
        self,
        *,
        statuses: Collection[AlertStatus] = (),
        severities: Collection[str] = (),
        feeds: Collection[str] = (),
        districts: Collection[str] = (),
        rules: Collection[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        after: Position | None = None,
        limit: int = 50,
    ) -> Page[Alert]:
        """Alerts newest episode start first, ``since`` ≤ start < ``until``; every filter given must hold
        (any of its values). Only unresolved statuses asked: read the smaller unresolved index."""
        unresolved_only = bool(statuses) and set(statuses) <= UNRESOLVED
        index = self.settings.redis_key("alerts", *(("unresolved",) if unresolved_only else ()))
        wanted = {
            "status": {str(status) for status in statuses},
            "severity": {str(severity) for severity in severities},
            "feed": set(feeds),
            "district": set(districts),
            "rule": set(rules),
        }
        wanted = {name: values for name, values in wanted.items() if values}

        def keep(alert: dict[str, Any]) -> bool:
            return all(alert.get(name) in values for name, values in wanted.items())

        return await self._page(
            index, self._records("alert"), keep, Alert.model_validate, after, limit, since=since, until=until
        )

    async def incidents(
        self,
        *,
        status: Literal["open", "resolved", "all"] = "open",
        districts: Collection[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        after: Position | None = None,
        limit: int = 50,
    ) -> Page[Incident]:
        """Incidents newest start first (merged and dissolved ones are not listed)."""
        index = self.settings.redis_key("incidents", *(("unresolved",) if status == "open" else ()))

        def keep(record: dict[str, Any]) -> bool:
            incident = record["incident"]
            return (status == "all" or incident["status"] == status) and (
                not districts or incident["district"] in districts
            )

        def load(record: dict[str, Any]) -> Incident:
            return Incident.model_validate(record["incident"])

        return await self._page(
            index, self._records("incident"), keep, load, after, limit, since=since, until=until
        )

    async def unresolved_alerts(self) -> list[Alert]:
        """Every open or acknowledged alert (the picture's counts; an operations room has tens, not
        thousands), newest episode start first."""
        ids = await self.redis.zrange(self.settings.redis_key("alerts", "unresolved"), 0, -1, desc=True)
        texts = await self._records("alert")(ids)
        return [alert for text in texts if text and (alert := Alert.model_validate_json(text)).unresolved]

    def _records(self, kind: str) -> Callable[[list[str]], Awaitable[list[str | None]]]:
        async def fetch(ids: list[str]) -> list[str | None]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for ident in ids:
                    pipe.hget(self.settings.redis_key(kind, ident), "json")
                return await pipe.execute()

        return fetch

    async def _page(
        self,
        index: str,
        fetch: Callable[[list[str]], Awaitable[list[str | None]]],
        keep: Callable[[dict[str, Any]], bool],
        load: Callable[[dict[str, Any]], T],
        after: Position | None,
        limit: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Page[T]:
        """Up to ``limit`` records of ``index`` that ``keep`` accepts, highest score first, from just after
        ``after``; ``since`` ≤ score < ``until``. At most ``SCAN_BUDGET`` entries past ``after`` are looked
        at, so a page of a selective query may come back short with a next position: follow it until it is
        None. Entries tied with ``after`` (same score) are looked at again to find where it was."""
        high, low = "+inf", "-inf"
        if until is not None:
            high = f"({until.timestamp()!r}"
        if after is not None and (until is None or after.score < until.timestamp()):
            high = repr(after.score)  # inclusive: members tied with ``after`` and not before it follow
        if since is not None:
            low = repr(since.timestamp())
        wanted = SCAN_BUDGET + (1 if after is not None else 0)  # ``after`` itself comes again
        entries: list[tuple[str, float]] = await self.redis.zrange(
            index, high, low, desc=True, byscore=True, offset=0, num=wanted, withscores=True
        )
        items: list[T] = []
        last: Position | None = None
        i = 0
        if after is not None:  # skip the entries tied with ``after`` up to and including it
            while i < len(entries) and entries[i][1] == after.score and entries[i][0] >= after.member:
                last = Position(entries[i][1], entries[i][0])
                i += 1
        chunk = max(limit, 100)
        while i < len(entries) and len(items) < limit:
            batch = entries[i : i + chunk]
            texts = await fetch([member for member, _ in batch])
            for (member, score), text in zip(batch, texts, strict=True):
                i += 1
                last = Position(score, member)
                if text and keep(record := json.loads(text)):
                    items.append(load(record))
                    if len(items) == limit:
                        break
        more = i < len(entries) or len(entries) == wanted
        return Page(items, last if more else None)


def _delta(window: PublishedWindow) -> bytes:
    """What the stream says of a stored aggregate: which sensor and window, and each field's mean."""
    return orjson.dumps(
        {
            "feed": window.feed,
            "window": window.window,
            "sensorId": window.sensor_id,
            "windowStart": window.window_start.isoformat(),
            "count": window.count,
            "values": window.means,
        }
    )


def _stream_id(text: str) -> tuple[int, int] | None:
    """A stream id ``<ms>-<seq>`` (or ``<ms>``) as a pair to compare, or None if it is not one."""
    ms, _, seq = text.strip().partition("-")
    if not ms.isdigit() or (seq and not seq.isdigit()):
        return None
    return int(ms), int(seq or 0)


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch: exact, unlike a float of seconds."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class _Record:
    """An alert or an incident as its Redis record: kept at the highest revision, indexed by place."""

    kind: Literal["alert", "incident"]
    ident: str
    revision: int
    text: str  # the record itself
    start: datetime  # its place in the time-ordered indexes
    place: Literal["open", "resolved", "gone"]
    event: str  # the event, for the stream


def _alert_record(event: AlertEvent) -> _Record:
    alert = event.alert
    place = "open" if alert.unresolved else "resolved"
    text = alert.model_dump_json(by_alias=True)
    return _Record(
        "alert", alert.id, event.revision, text, alert.episode_start, place, event.to_json().decode()
    )


def _incident_record(event: IncidentEvent) -> _Record:
    incident = event.incident
    if event.change in (IncidentChange.merged, IncidentChange.dissolved):
        place: Literal["open", "resolved", "gone"] = "gone"
    else:
        place = "open" if incident.status == IncidentStatus.open else "resolved"
    text = json.dumps(
        {"incident": incident.model_dump(mode="json", by_alias=True), "mergedInto": event.merged_into}
    )
    return _Record(
        "incident", incident.id, event.revision, text, incident.started_at, place, event.to_json().decode()
    )
