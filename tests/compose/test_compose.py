"""docker-compose.yml run for real: the images built from the local Debian base, every service healthy,
a reading through the published API port raising its alert, two workers sharing the partitions, and a
`down` that loses nothing acknowledged. Test traffic goes only to the ports published on 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from ioc.city import load_city
from ioc.infra.mosquitto import mqtt_answers, new_client, parse_mqtt_url
from tests.compose.conftest import KEYS, SERVICES, Stack, phase, report

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

SECRETS = (
    "IOC_API_KEYS",
    "IOC_CARD_HMAC_KEY",
    "IOC_REDIS_PASSWORD",
    "IOC_MQTT_PASSWORD",
    "IOC_POSTGRES_PASSWORD",
)
OPERATOR = {"X-API-Key": KEYS["operator"]}
INTEGRATOR = {"X-API-Key": KEYS["integrator"]}

# Every record of a topic, read inside the stack (Kafka is not published): [[key, value], …].
READ_TOPIC = """
import json, os
from kafka import KafkaConsumer
consumer = KafkaConsumer(bootstrap_servers=os.environ["IOC_KAFKA_BOOTSTRAP"], enable_auto_commit=False)
partitions = [p for p in consumer.partitions_for_topic({topic!r}) or ()]
from kafka import TopicPartition
assigned = [TopicPartition({topic!r}, p) for p in partitions]
consumer.assign(assigned)
consumer.seek_to_beginning(*assigned)
end = consumer.end_offsets(assigned)
out = []
while any(consumer.position(tp) < end[tp] for tp in assigned):
    for records in consumer.poll(timeout_ms=1000).values():
        out += [[r.key.decode() if r.key else None, json.loads(r.value)] for r in records]
print(json.dumps(out))
"""

# The consumer group's members: [{"host": …, "topics": {topic: [partitions]}}, …].
DESCRIBE_GROUP = """
import json, os
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers=os.environ["IOC_KAFKA_BOOTSTRAP"])
group = admin.describe_groups([{group!r}])[{group!r}]
members = []
for member in group["members"]:
    assignment = member["member_assignment"]  # decoded, or as it came while a rebalance runs
    parts = assignment["assigned_partitions"] if isinstance(assignment, dict) else []
    topics = {{t["topic"]: sorted(t["partitions"]) for t in parts}}
    members.append({{"host": member["client_host"].lstrip("/"), "topics": topics}})
print(json.dumps({{"state": group["group_state"], "members": members}}))
"""


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, stack: Stack | None = None
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(2)
    pytest.fail(f"{what}: not within {timeout:.0f} s" + (stack.diagnosis() if stack else ""))


def air_stations() -> list[str]:
    return [sensor.id for sensor in load_city("hanoi").sensors_of("air")]


def hazardous(station: str, first: datetime, minutes: int, pm25: float = 455.0) -> list[dict]:
    """A reading a minute, PM2.5 in the 450s µg/m³ (VN_AQI hazardous), never stuck on one value."""
    return [
        {
            "sensorId": station,
            "dateObserved": (first + timedelta(minutes=m)).isoformat(),
            "pm25": pm25 + m % 11,
        }
        for m in range(minutes)
    ]


def picture_sensors(stack: Stack, feed: str) -> dict[str, dict]:
    answer = httpx.get(f"{stack.api}/v1/picture", headers=OPERATOR, timeout=10)
    answer.raise_for_status()
    return {s["sensorId"]: s for s in answer.json()["feeds"][feed]["sensors"]}


def open_alerts(stack: Stack, rule: str) -> dict[str, dict]:
    answer = httpx.get(
        f"{stack.api}/v1/alerts", params={"rule": rule, "limit": 200}, headers=OPERATOR, timeout=10
    )
    answer.raise_for_status()
    return {a["entity"]: a for a in answer.json()["items"]}


def test_compose_refuses_to_start_without_each_secret(stack: Stack):
    for name in SECRETS:
        env = {k: v for k, v in stack.env.items() if k != name}
        result = stack.compose("config", "--quiet", env=env, timeout=60)
        assert result.returncode != 0 and name in result.stderr, (name, result.stderr)
    assert stack.compose("config", "--quiet", timeout=60).returncode == 0


def test_every_service_is_healthy_as_ioc_and_only_the_api_and_mqtt_are_published_on_loopback(stack: Stack):
    containers = stack.containers()
    services = [c.labels["com.docker.compose.service"] for c in containers]
    assert {s: services.count(s) for s in services} == SERVICES
    assert stack.unhealthy() == {}
    published = {}
    for container in containers:
        assert container.attrs["Config"]["User"] == "ioc", container.name
        for port, bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).items():
            for binding in bindings or ():
                published[(container.labels["com.docker.compose.service"], port)] = binding["HostIp"]
    assert published == {("api", "8000/tcp"): "127.0.0.1", ("mosquitto", "1883/tcp"): "127.0.0.1"}
    # The API answers on the published port, and refuses without a key.
    assert httpx.get(f"{stack.api}/readyz", timeout=10).json()["status"] == "ok"
    assert httpx.get(f"{stack.api}/v1/picture", timeout=10).status_code == 401


def test_mqtt_refuses_anonymous_clients_and_takes_the_configured_user(stack: Stack):
    assert not mqtt_answers(f"mqtt://127.0.0.1:{stack.mqtt_port}")
    assert not mqtt_answers(f"mqtt://ioc:wrong@127.0.0.1:{stack.mqtt_port}")
    assert mqtt_answers(f"mqtt://ioc:{stack.env['IOC_MQTT_PASSWORD']}@127.0.0.1:{stack.mqtt_port}")


def test_readings_through_the_published_api_and_mqtt_reach_the_picture_and_raise_the_alert(stack: Stack):
    station, by_mqtt = air_stations()[:2]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # 90 minutes of hazardous air: the hourly VN_AQI is over 150 for longer than the rule's 30-minute hold.
    answer = httpx.post(
        f"{stack.api}/v1/ingest/air",
        json=hazardous(station, now - timedelta(minutes=100), 90),
        headers=INTEGRATOR,
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 90, answer.text

    address = parse_mqtt_url(f"mqtt://ioc:{stack.env['IOC_MQTT_PASSWORD']}@127.0.0.1:{stack.mqtt_port}")
    client = new_client(address, client_id="ioc-compose-test")
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        reading = {
            "sensorId": by_mqtt,
            "dateObserved": (now - timedelta(minutes=5)).isoformat(),
            "pm25": 31.0,
        }
        client.publish(f"ioc/air/{by_mqtt}", json.dumps(reading), qos=1).wait_for_publish(timeout=10)
    finally:
        client.loop_stop()
        client.disconnect()

    sensors = wait_for(
        lambda: (s := picture_sensors(stack, "air")) and station in s and by_mqtt in s and s,
        timeout=300,
        what="both stations in the picture",
        stack=stack,
    )
    assert sensors[by_mqtt]["count"] >= 1
    alert = wait_for(
        lambda: open_alerts(stack, "air.aqi_band").get(station), 300, "the air.aqi_band alert", stack
    )
    assert alert["status"] == "open" and alert["severity"] == "critical", alert


def test_two_workers_share_the_partitions(pytestconfig: pytest.Config, stack: Stack):
    workers = {
        c.attrs["NetworkSettings"]["Networks"][f"{stack.project}_default"]["IPAddress"]
        for c in stack.service("worker")
    }
    assert len(workers) == 2

    def stable_group() -> dict | None:
        group = stack.python("api", DESCRIBE_GROUP.format(group="ioc"))
        return group if group["state"] == "Stable" and len(group["members"]) == 2 else None

    group = wait_for(stable_group, 300, "a stable group of two workers", stack)
    assert {m["host"] for m in group["members"]} == workers
    partitions = list(range(int(stack.env.get("IOC_PARTITIONS", "4"))))
    for feed in ("air", "traffic", "water", "transit"):
        topic = f"ioc.{feed}.raw"
        shares = [m["topics"].get(topic, []) for m in group["members"]]
        assert all(shares), (topic, shares)  # each worker reads part of every raw topic…
        assert sorted(p for share in shares for p in share) == partitions, (topic, shares)  # …none twice
    restarted = stack.restarts()
    report(pytestconfig, f"containers restarted so far: {restarted or 'none'}")
    # Started together on empty volumes, neither worker stopped on the way (``ioc worker`` makes the
    # tables' changelogs before Faust starts; see streams/app.py).
    assert not [name for name in restarted if "worker" in name], stack.diagnosis(60)


def history_points(stack: Stack, station: str, since: datetime) -> list[dict]:
    params = {"sensor": station, "measure": "pm25", "window": "1m", "from": since.isoformat()}
    answer = httpx.get(f"{stack.api}/v1/history", params=params, headers=OPERATOR, timeout=10)
    answer.raise_for_status()
    return answer.json()["points"]


def test_the_history_reaches_postgresql_and_the_open_data_the_state_volume(stack: Stack):
    station = air_stations()[6]
    first = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=40)
    answer = httpx.post(
        f"{stack.api}/v1/ingest/air",
        json=hazardous(station, first, 20, pm25=30.0),
        headers=INTEGRATOR,
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 20, answer.text
    wait_for(
        lambda: len(history_points(stack, station, first)) == 20, 300, "the 20 windows in the history", stack
    )

    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    [api] = stack.service("api")
    code, output = api.exec_run(["ioc", "export", "--from", today, "--to", today])
    assert code == 0, output.decode(errors="replace")
    answer = httpx.get(f"{stack.api}/open-data/index.json", timeout=10)
    assert answer.status_code == 200, answer.text


def test_no_secret_reaches_a_log(stack: Stack):
    logs = {c.name: c.logs().decode(errors="replace") for c in stack.containers()}
    assert sum(len(text) for text in logs.values()) > 0
    values = [stack.env[name] for name in SECRETS if name != "IOC_API_KEYS"] + list(KEYS.values())
    leaks = {name: [v[:6] + "…" for v in values if v in text] for name, text in logs.items()}
    assert {name: found for name, found in leaks.items() if found} == {}


def test_down_and_up_lose_nothing_that_was_acknowledged(pytestconfig: pytest.Config, stack: Stack):
    stations = air_stations()[2:6]
    first = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=60)
    acknowledged = set()
    for station in stations:
        items = hazardous(station, first, 50, pm25=20.0)
        answer = httpx.post(f"{stack.api}/v1/ingest/air", json=items, headers=INTEGRATOR, timeout=30)
        assert answer.status_code == 200 and answer.json()["accepted"] == len(items), answer.text
        acknowledged |= {(i["sensorId"], datetime.fromisoformat(i["dateObserved"])) for i in items}
    alerts_before = open_alerts(stack, "air.aqi_band")

    # At once, the way an operator does it: each service gets its stop signal and grace period.
    started = time.monotonic()
    result = stack.compose("down", timeout=300)
    assert result.returncode == 0, result.stderr
    assert stack.containers() == []
    phase(pytestconfig, "down (volumes kept)", started)
    started = time.monotonic()
    stack.up()
    stack.wait_healthy()
    phase(pytestconfig, "up again, every service healthy", started)

    records = stack.python("api", READ_TOPIC.format(topic="ioc.air.raw"))
    in_kafka = {(v["sensorId"], datetime.fromisoformat(v["dateObserved"])) for _, v in records}
    assert acknowledged <= in_kafka, sorted(acknowledged - in_kafka)[:5]
    # Redis kept the picture (its append-only file is on its volume): the alerts are still there;
    assert open_alerts(stack, "air.aqi_band").keys() >= alerts_before.keys()
    # PostgreSQL kept the history and the state volume the open data.
    assert len(history_points(stack, air_stations()[6], datetime.now(UTC) - timedelta(hours=2))) == 20
    assert httpx.get(f"{stack.api}/open-data/index.json", timeout=10).status_code == 200
    # and the workers, back, count every acknowledged reading.
    wait_for(
        lambda: set(stations) <= picture_sensors(stack, "air").keys(), 180, "the stations in the picture"
    )
