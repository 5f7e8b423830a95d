"""The live operating picture in Redis: the newest window aggregate per sensor, by event time.

Keys (all under the configured prefix):
  ``<prefix>:agg:<feed>:<window>:<sensor>`` hash ``start``, ``count``, ``json`` (the WindowAggregate)
  ``<prefix>:sensors:<feed>`` set of sensor ids that have reported
  ``<prefix>:alert:<id>`` hash ``revision``, ``json`` (the alert as of its latest event)
  ``<prefix>:alerts`` sorted set of alert ids by episode start; ``<prefix>:alerts:unresolved`` the same,
  of the alerts not resolved yet
Writes are compare-and-set — aggregates on (window start, count), alerts on their revision — so a
replayed or reordered update never replaces a newer one.
"""

from __future__ import annotations

from redis.asyncio import Redis

from ioc.models.alert import AlertEvent
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


_ALERT_IF_NEWER = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'revision'))
local revision = tonumber(ARGV[1])
if stored and stored >= revision then return 0 end
redis.call('HSET', KEYS[1], 'revision', ARGV[1], 'json', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
if ARGV[5] == 'resolved' then
  redis.call('ZREM', KEYS[3], ARGV[4])
else
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
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
        self._alert_if_newer = redis.register_script(_ALERT_IF_NEWER)

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
        stored = await self._alert_if_newer(
            keys=[
                self.settings.redis_key("alert", alert.id),
                self.settings.redis_key("alerts"),
                self.settings.redis_key("alerts", "unresolved"),
            ],
            args=[
                event.revision,
                alert.model_dump_json(by_alias=True),
                alert.episode_start.timestamp(),
                alert.id,
                alert.status.value,
            ],  # fmt: skip
        )
        return bool(stored)

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
