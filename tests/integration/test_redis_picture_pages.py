"""The picture's pages against a real Redis: newest first, ties on the episode start, cursors that survive
new alerts arriving, pages cut short by the scan budget, and silences written once per partition."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest

from connectors.sinks import redis_picture
from connectors.sinks.redis_picture import Position, RedisPicture, connect
from ioc.alerts.silence import Matchers, Silence
from ioc.api.examples import EXAMPLES
from ioc.models.alert import Alert, AlertChange, AlertEvent, AlertStatus
from ioc.windows import PublishedWindow

pytestmark = pytest.mark.integration

T0 = datetime.fromisoformat("2026-11-23T07:00:00+07:00")
BASE = Alert.model_validate(EXAMPLES["open_alert"])


def event(number: int, minute: int, status: AlertStatus = AlertStatus.open) -> AlertEvent:
    alert = BASE.model_copy(
        update={"id": f"a{number:02d}", "episode_start": T0 + timedelta(minutes=minute), "status": status}
    )
    return AlertEvent(change=AlertChange.opened, revision=1, at=alert.episode_start, alert=alert)


def run(settings, work):
    async def main():
        client = connect(settings)
        try:
            return await work(RedisPicture(settings, client))
        finally:
            await client.aclose()

    return asyncio.run(main())


async def every_page(picture: RedisPicture, **query) -> list[list[str]]:
    pages, after = [], None
    while True:
        page = await picture.alerts(after=after, **query)
        pages.append([alert.id for alert in page.items])
        if (after := page.next) is None:
            return pages


def test_pages_walk_ties_in_a_stable_order_and_new_alerts_do_not_shift_them(settings):
    # Seven alerts, four of them starting in the same minute; a03 and a06 are resolved.
    minutes = {1: 0, 2: 5, 3: 5, 4: 5, 5: 5, 6: 10, 7: 20}
    resolved = {3, 6}

    async def work(picture: RedisPicture):
        for number, minute in minutes.items():
            await picture.write_alert(
                event(number, minute, AlertStatus.resolved if number in resolved else AlertStatus.open)
            )
        everything = [a.id for a in (await picture.alerts(limit=500)).items]
        pages = await every_page(picture, limit=2)
        unresolved = await every_page(picture, limit=2, statuses=[AlertStatus.open])
        first = await picture.alerts(limit=3)
        await picture.write_alert(event(8, 30))  # newer: it goes on top, not into the next page
        second = await picture.alerts(limit=3, after=first.next)
        return everything, pages, unresolved, first, second

    everything, pages, unresolved, first, second = run(settings, work)
    assert everything == ["a07", "a06", "a05", "a04", "a03", "a02", "a01"]  # ties: highest id first
    assert pages == [["a07", "a06"], ["a05", "a04"], ["a03", "a02"], ["a01"]]
    assert unresolved == [["a07", "a05"], ["a04", "a02"], ["a01"]]
    assert [a.id for a in first.items] == ["a07", "a06", "a05"]
    assert [a.id for a in second.items] == ["a04", "a03", "a02"]
    assert Position.parse(first.next.token()) == first.next


def test_a_selective_query_pages_through_the_scan_budget(settings, monkeypatch):
    monkeypatch.setattr(redis_picture, "SCAN_BUDGET", 3)

    async def work(picture: RedisPicture):
        for number in range(1, 9):
            status = AlertStatus.resolved if number in (1, 2) else AlertStatus.open
            await picture.write_alert(event(number, number, status))
        return await every_page(picture, limit=5, statuses=[AlertStatus.resolved])

    # Newest first, three entries looked at per request: two empty pages before the resolved ones.
    assert run(settings, work) == [[], [], ["a02", "a01"]]


def test_each_partitions_copy_of_a_silence_leaves_the_one_that_ends_first(settings):
    created = Silence(
        id="s-1",
        matchers=Matchers(rule="air.*"),
        starts_at=T0,
        ends_at=T0 + timedelta(hours=3),
        created_by="operator#1",
        comment="dust",
    )
    ended = created.model_copy(update={"ends_at": T0 + timedelta(hours=1), "ended_by": "admin#3"})

    async def work(picture: RedisPicture):
        # Partition 0 gives both versions before partition 1 gives its copy of the first one.
        stored = [await picture.write_silence(s) for s in (created, ended, created, ended)]
        return stored, await picture.silence("s-1"), await picture.silences(T0 + timedelta(hours=2))

    stored, silence, later = run(settings, work)
    assert stored == [True, True, False, False]
    assert silence == ended and later == []


def test_unregistered_sensors_are_capped_per_feed_and_expire(settings):
    """Anyone with an ingest key can make up sensor ids: the picture keeps the feed's newest few, each
    for a day after its last window, and registered sensors are never evicted."""
    capped = settings.model_copy(update={"unregistered_sensors_max": 3})
    made_up = [f"unregistered:x{n}" for n in range(5)]

    def window(sensor_id: str, label: str = "1m") -> PublishedWindow:
        text = json.dumps({"sensorId": sensor_id}).encode()
        return PublishedWindow("air", sensor_id, label, 1_800_000_000, 1, 1_800_000_000.0, {}, text)

    async def work(picture: RedisPicture):
        await picture.write_aggregates([window("air-hoan-kiem"), window(made_up[0], "1h")])
        for sensor_id in made_up:
            await picture.write_aggregates([window(sensor_id)])
            await asyncio.sleep(1.05)  # the eviction goes by Redis's clock, in seconds
        redis = picture.redis
        members = await redis.smembers(capped.redis_key("sensors", "air"))
        windows = {key async for key in redis.scan_iter(match=capped.redis_key("agg", "air", "*"))}
        ttl = await redis.ttl(capped.redis_key("agg", "air", "1m", made_up[-1]))
        return members, windows, ttl

    members, windows, ttl = run(capped, work)
    assert members == {"air-hoan-kiem", *made_up[2:]}
    assert windows == {capped.redis_key("agg", "air", "1m", s) for s in ("air-hoan-kiem", *made_up[2:])}
    assert 86_000 < ttl <= capped.unregistered_ttl_seconds
