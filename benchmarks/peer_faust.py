"""The Faust floor in ``benchmarks/bench.py``: the peer's job written on Faust, the way a user would.

    .venv/bin/python benchmarks/peer_faust.py --broker 127.0.0.1:9092 --input ioc.air.raw \
        --output ioc.faust.alerts --group faust-floor --state-dir /tmp/faust-floor

The same job as ``benchmarks/peer_quix.py``: per sensor (the record key), a 1-minute tumbling window in
event time (the reading's ``dateObserved``) with the mean and the max of PM2.5, and a record on the output
topic whenever a window's max is above 150 µg/m³. Written on faust-streaming, the framework ioc's worker
runs on, in ioc's virtualenv, importing nothing of ioc and no private name of Faust: one ``faust.App``, one
agent over the raw topic, the windows in a windowed Faust table (the in-memory store, with its changelog
topic, as ioc keeps its state), events in batches through ``stream.take()``. So it is what Faust itself
costs for a windowed job, the floor under ioc's worker.

Two ways to consume, ``--mode``:

- ``take`` (the default, the bench's ``faust-floor``): ``stream.take(4000, within=0.1)``, ioc's batch size
  and wait. A batch's readings are folded into their windows, each window touched is written to the
  table once per batch, and each window touched whose max is above the threshold goes out once per batch,
  at its latest (the batch counterpart of the peer's ``.current()``). ``take`` hands the batch over from
  a background task that iterates the stream, so the agent runs outside stream iteration, where Faust
  refuses to pick a table key's changelog partition from the current event ("Cannot modify table key
  from outside of stream iteration"); the public way out is the table option ``use_partitioner=True``:
  the producer's partitioner picks it from the key. The window of a reading is computed from its field
  with the table's own window (``TumblingWindow.ranges``), and addressed as ``table[sensor][window range]``.
- ``iterate``: ``async for`` over the stream, one reading at a time: the same table, one write per
  reading, one output per reading above the threshold. For Faust's own per-record cost, take against
  iteration.
- ``take-count``, ``iterate-count``: the agent only counts what it gets (no table, no output): what
  Faust's consuming alone costs per record (deserialising, delivering, acknowledging, committing).

In the bench's input every sensor reports once a minute, so each window gets one reading, and both modes
write the table once per reading and send the same records. Faust's settings are its defaults but for
the commit interval (``--commit-interval``), the producer, set as ioc's worker sets it (acks from all
replicas, ``--linger`` 5 ms, batches up to 256 KiB), the start from the earliest offset of a fresh group,
the web server (off) and the data directory. It runs until terminated (SIGTERM stops the worker cleanly).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import Any

import faust

# µg/m³: where VN_AQI's PM2.5 sub-index passes 200 ("very bad"), as in peer_quix.py.
PM25_THRESHOLD = 150.0
BATCH_MAX = 4000  # ioc's pipeline: streams/pipeline.py BATCH_MAX and BATCH_WITHIN
BATCH_WITHIN = 0.1
# 1-minute tumbling windows, kept for 10 minutes of event time after they end, then dropped by the
# table's cleanup (with a tombstone on the changelog).
WINDOW = faust.TumblingWindow(60, expires=timedelta(minutes=10))


def fold(state: dict[str, float] | None, pm25: float) -> dict[str, float]:
    if state is None:
        return {"count": 1, "sum": pm25, "max": pm25}
    return {"count": state["count"] + 1, "sum": state["sum"] + pm25, "max": max(state["max"], pm25)}


def alert(sensor: str, window: tuple[float, float], state: dict[str, float]) -> dict[str, Any]:
    start, _ = window
    return {
        "kind": "pm25-above-threshold",
        "sensorId": sensor,
        "windowStart": int(start * 1000),
        "windowEnd": int((start + WINDOW.size) * 1000),
        "pm25Mean": state["sum"] / state["count"],
        "pm25Max": state["max"],
        "threshold": PM25_THRESHOLD,
    }


def window_of(reading: dict[str, Any]) -> tuple[float, float]:
    """The event-time window of a reading: its ``dateObserved``, not when Kafka received it."""
    (window,) = WINDOW.ranges(datetime.fromisoformat(reading["dateObserved"]).timestamp())
    return window


def build(args: argparse.Namespace) -> faust.App:
    app = faust.App(
        args.group,  # the app id is the consumer group
        broker=[f"kafka://{server}" for server in args.broker.split(",")],
        store="memory://",
        datadir=args.state_dir,
        topic_partitions=args.partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=args.commit_interval,
        # The producer as ioc's worker sets it (streams/app.py): acknowledged by all replicas, a few
        # milliseconds of linger so that a batch's table and output records share produce requests
        # (Faust's default, no linger, sends a request per record).
        producer_acks=-1,
        producer_linger=args.linger,
        producer_max_batch_size=256 * 1024,
        web_enabled=False,
    )
    raw = app.topic(args.input, key_type=str, value_serializer="json")
    alerts = app.topic(args.output, key_type=str, value_serializer="json")
    windows = app.Table(
        "pm25-1m",
        default=lambda: None,
        partitions=args.partitions,  # keys (sensor, (window start, end)) and values in JSON
        use_partitioner=True,
    ).using_window(WINDOW)

    if args.mode == "take":

        @app.agent(raw)
        async def per_batch(stream: faust.StreamT) -> None:
            async for batch in stream.take(BATCH_MAX, within=BATCH_WITHIN):
                touched: dict[tuple[str, tuple[float, float]], dict[str, float]] = {}
                for reading in batch:
                    key = (reading["sensorId"], window_of(reading))
                    state = touched[key] if key in touched else windows[key[0]][key[1]]
                    touched[key] = fold(state, reading["pm25"])
                for (sensor, window), state in touched.items():
                    windows[sensor][window] = state
                    if state["max"] > PM25_THRESHOLD:
                        await alerts.send(key=sensor, value=alert(sensor, window, state))

    elif args.mode == "iterate":

        @app.agent(raw)
        async def per_reading(stream: faust.StreamT) -> None:
            async for sensor, reading in stream.items():
                window = window_of(reading)
                state = fold(windows[sensor][window], reading["pm25"])
                windows[sensor][window] = state
                if state["max"] > PM25_THRESHOLD:
                    await alerts.send(key=sensor, value=alert(sensor, window, state))

    else:  # take-count, iterate-count: Faust's consumption alone (deserialise, deliver, acknowledge, commit)
        counted = 0

        @app.agent(raw)
        async def count(stream: faust.StreamT) -> None:
            nonlocal counted
            if args.mode == "take-count":
                async for batch in stream.take(BATCH_MAX, within=BATCH_WITHIN):
                    counted += len(batch)
            else:
                async for _reading in stream:
                    counted += 1

    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--broker", required=True, help="bootstrap servers")
    parser.add_argument("--input", required=True, help="the air raw topic (JSON values keyed by sensor)")
    parser.add_argument("--output", required=True, help="the topic for the alerts")
    parser.add_argument(
        "--group", required=True, help="Faust app id and consumer group (fresh: from the start)"
    )
    parser.add_argument("--state-dir", required=True, help="Faust's data directory")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the table's changelog")
    parser.add_argument("--commit-interval", type=float, default=2.8, help="seconds between commits")
    parser.add_argument("--mode", choices=("take", "iterate", "take-count", "iterate-count"), default="take")
    parser.add_argument(
        "--linger", type=float, default=0.005, help="producer linger, seconds (Faust's default: 0)"
    )
    args = parser.parse_args()
    faust.Worker(build(args), loglevel="INFO").execute_from_commandline()


if __name__ == "__main__":
    main()
