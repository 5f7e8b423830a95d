"""Duplicate marks of accepted events in Redis, shared by every edge (the HTTP API, the MQTT bridge).

An event's ``dedup_key`` (``ioc.ingest.edge``: its ``eventId``, else sensor + event time [+ lane]) is
marked ``pending`` (``SET NX EX IOC_INGEST_DEDUP_SECONDS``) before it is produced and ``done`` once Kafka
has it; a key already ``done`` is a duplicate and is not produced again, whichever edge sent it first. A
key ``pending`` elsewhere (another request, or an attempt that crashed before Kafka answered) is produced
anyway: losing it would be worse than a repeat, which the worker's windows count as any repeat.
"""

from __future__ import annotations

from redis.asyncio import Redis

from ioc.settings import Settings

PENDING, DONE = "pending", "done"
NEW, SEEN, IN_FLIGHT = 0, 1, 2  # what ``mark`` found for a key

# Every key: SET NX; when it exists, say whether it is done (a duplicate) or pending elsewhere.
_MARK = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'EX', ARGV[2]) then
    out[i] = '0'
  elseif redis.call('GET', key) == ARGV[3] then
    out[i] = '1'
  else
    out[i] = '2'
  end
end
return table.concat(out)
"""
# Mark every key done (one script call: far cheaper than a pipeline of SETs for a 1,000-item batch).
_CONFIRM = """
for _, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1], 'EX', ARGV[2]) end
return 0
"""
# Delete the keys still marked pending (ours), leave the others.
_UNMARK = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""


class DedupMarks:
    """The marks of one edge process; each call is one Redis round trip (the caller bounds its time)."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self._mark = redis.register_script(_MARK)
        self._confirm = redis.register_script(_CONFIRM)
        self._unmark = redis.register_script(_UNMARK)

    async def mark(self, dedup_keys: list[str]) -> list[int]:
        """Mark each key pending unless it is marked: NEW, SEEN (done: a duplicate) or IN_FLIGHT, per key."""
        if not dedup_keys:
            return []
        states = await self._mark(
            keys=self._keys(dedup_keys), args=[PENDING, self.settings.ingest_dedup_seconds, DONE]
        )
        # One digit per key (a string, not an array: 1,000 array items cost more to parse than the script).
        states = states.decode() if isinstance(states, bytes) else states
        return [int(s) for s in states]

    async def confirm(self, dedup_keys: list[str]) -> None:
        """Kafka has these events: later copies are duplicates."""
        if dedup_keys:
            await self._confirm(keys=self._keys(dedup_keys), args=[DONE, self.settings.ingest_dedup_seconds])

    async def unmark(self, dedup_keys: list[str]) -> None:
        """These were not produced: drop our pending marks so a retry is not taken for a duplicate."""
        if dedup_keys:
            await self._unmark(keys=self._keys(dedup_keys), args=[PENDING])

    def _keys(self, dedup_keys: list[str]) -> list[str]:
        return [self.settings.redis_key("ingest", "seen", key) for key in dedup_keys]
