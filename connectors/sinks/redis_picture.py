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
Writes are compare-and-set — aggregates on (window start, count), alerts and incidents on revision — so a
replayed or reordered update never replaces a newer one.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from redis.asyncio import Redis

from ioc.models.alert import AlertEvent, IncidentChange, IncidentEvent, IncidentStatus
from ioc.models.dead_letter import DeadLetter
from ioc.settings import Settings
from ioc.windows import WindowAggregate

# Replace only if the incoming (start, count) is not older than the stored one.
_WRITE_IF_NEWER = """
local stored = redis.call('HMGET', KEYS[1], 'start', 'count')
local start, count = tonumber(ARGV[1]), tonumber(ARGV[2])
if stored[1] then
  local s, c = tonumber(stored[1]), tonumber(stored[2])
  if s > start or (s == start and c > count) then return 0 end
end
redis.call('HSET', KEYS[1], 'start', ARGV[1], 'count', ARGV[2], 'json', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
"""


# An alert or incident as of its event, unless a later revision is stored; then its place in the index
# of all (KEYS[2]) and of the unresolved (KEYS[3]): ARGV[5] is 'open', 'resolved' or 'gone' (merged away).
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
return 1
"""


def connect(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_address, decode_responses=True)


class RedisPicture:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self._write_if_newer = redis.register_script(_WRITE_IF_NEWER)
        self._record_if_newer = redis.register_script(_RECORD_IF_NEWER)

    def _agg_key(self, feed: str, window: str, sensor_id: str) -> str:
        return self.settings.redis_key("agg", feed, window, sensor_id)

    def _sensors_key(self, feed: str) -> str:
        return self.settings.redis_key("sensors", feed)

    async def write_aggregate(self, aggregate: WindowAggregate) -> bool:
        """Store the aggregate unless a newer one is there; True when it was stored."""
        return (await self.write_aggregates([aggregate]))[0]

    async def write_aggregates(self, aggregates: list[WindowAggregate]) -> list[bool]:
        """Store each aggregate unless a newer one is there, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for aggregate in aggregates:
                await self._write_if_newer(
                    keys=[
                        self._agg_key(aggregate.feed, aggregate.window, aggregate.sensor_id),
                        self._sensors_key(aggregate.feed),
                    ],
                    args=[
                        int(aggregate.window_start.timestamp()),
                        aggregate.count,
                        aggregate.to_json().decode(),
                        aggregate.sensor_id,
                    ],
                    client=pipe,
                )
            return [bool(stored) for stored in await pipe.execute()]

    async def write_alert(self, event: AlertEvent) -> bool:
        """Store the alert as of this event unless a later revision is there; True when stored."""
        alert = event.alert
        text = alert.model_dump_json(by_alias=True)
        place = "open" if alert.unresolved else "resolved"
        return await self._write_record("alert", alert.id, event.revision, text, alert.episode_start, place)

    async def write_incident(self, event: IncidentEvent) -> bool:
        """Store the incident as of this event unless a later revision is there; a merged or dissolved
        incident leaves the indexes (its record stays, naming ``mergedInto``)."""
        incident = event.incident
        if event.change in (IncidentChange.merged, IncidentChange.dissolved):
            place = "gone"
        else:
            place = "open" if incident.status == IncidentStatus.open else "resolved"
        text = json.dumps(
            {"incident": incident.model_dump(mode="json", by_alias=True), "mergedInto": event.merged_into}
        )
        return await self._write_record(
            "incident", incident.id, event.revision, text, incident.started_at, place
        )

    async def _write_record(
        self, kind: str, ident: str, revision: int, text: str, start: datetime, place: str
    ) -> bool:
        stored = await self._record_if_newer(
            keys=[
                self.settings.redis_key(kind, ident),
                self.settings.redis_key(f"{kind}s"),
                self.settings.redis_key(f"{kind}s", "unresolved"),
            ],
            args=[revision, text, start.timestamp(), ident, place],
        )
        return bool(stored)

    async def count_dead_letters(self, letters: list[DeadLetter]) -> None:
        """Add the letters to the per feed and reason counts (``late`` counts late events)."""
        counts = Counter(f"{letter.feed}:{letter.reason}" for letter in letters)
        async with self.redis.pipeline(transaction=False) as pipe:
            for field, number in counts.items():
                pipe.hincrby(self.settings.redis_key("metrics", "dead-letters"), field, number)
            await pipe.execute()

    async def dead_letter_counts(self) -> dict[tuple[str, str], int]:
        """(feed, reason) → dead letters counted so far."""
        stored = await self.redis.hgetall(self.settings.redis_key("metrics", "dead-letters"))
        return {tuple(field.split(":", 1)): int(number) for field, number in stored.items()}

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
