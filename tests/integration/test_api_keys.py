"""Named API keys and wrong keys against a real ``ioc api`` process, Kafka and Redis (issue 16).

* Keys come from ``IOC_API_KEYS`` (``name:role:key``, or ``role:key``, named ``<role>-<6 hex>``) and from
  ``IOC_API_KEYS_FILE`` (``name:role:<SHA-256>``): each opens what its role allows, and what the caller
  does is recorded under the key's name (a silence's createdBy, a dead letter's source, the log).
  Neither the API's log nor its answers hold a key.
* Wrong keys are limited per client address: past ``IOC_AUTH_FAILURES_MAX``, that address gets 429 with
  Retry-After, even with a good key, while a good key from another address is served.
* A password in a URL is shown masked: an Alertmanager's basic-auth password reaches neither
  ``ioc notify``'s log nor its report in Redis nor the public ``/metrics``.
"""

from __future__ import annotations

import hashlib

import httpx
import pytest
from fastapi.testclient import TestClient

from connectors.kafka import create_topics
from connectors.redis_client import connect_sync
from ioc.api import create_app
from ioc.notify.runner import metrics_key
from ioc.settings import unnamed_key_name
from tests.conftest import free_port
from tests.integration.test_api_hardening import api_process
from tests.processes import IocProcess, read_topic, wait_for

pytestmark = pytest.mark.integration

ALICE_KEY = "alice-operator-key-7f3a"  # named in IOC_API_KEYS
BOB_KEY = "bob-admin-key-91c2"  # only its SHA-256 is in IOC_API_KEYS_FILE
INTEGRATOR_KEY = "unnamed-integrator-key-55d0"  # role:key, unnamed
KEYS = f"alice:operator:{ALICE_KEY},integrator:{INTEGRATOR_KEY}"
SILENCE = {"matchers": {"rule": "air.*"}, "duration": "PT1H", "comment": "dust from the works"}


def keys_file(tmp_path):
    path = tmp_path / "api-keys"
    path.write_text(f"# the duty admin\nbob:admin:{hashlib.sha256(BOB_KEY.encode()).hexdigest()}\n")
    return path


def test_named_keys_open_their_roles_and_the_audit_trail_names_them_never_the_keys(settings, tmp_path):
    create_topics(settings, [settings.silences_topic, settings.raw_topic("air"), settings.dlq_topic])
    api, port = api_process(
        settings,
        tmp_path,
        api_keys=KEYS,
        api_keys_file=keys_file(tmp_path),
        command_wait_seconds=0,  # no worker here: the silence is answered once Kafka has it
    )
    integrator_name = unnamed_key_name("integrator", INTEGRATOR_KEY)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            alice, bob = {"X-API-Key": ALICE_KEY}, {"X-API-Key": BOB_KEY}
            assert http.get("/v1/picture", headers=alice).status_code == 200
            assert http.get("/v1/picture", headers={"X-API-Key": INTEGRATOR_KEY}).status_code == 403
            created = http.post("/v1/silences", json=SILENCE, headers=alice)
            assert created.status_code == 201, created.text
            assert created.json()["createdBy"] == "alice"
            # A file key is the admin it says (no worker runs here to list silences: one is created again).
            by_bob = http.post("/v1/silences", json=SILENCE, headers=bob)
            assert by_bob.status_code == 201 and by_bob.json()["createdBy"] == "bob", by_bob.text
            # As Kafka has them (each silence is written to every partition):
            silences = read_topic(settings, settings.silences_topic, expect=2 * settings.partitions)
            assert (
                sorted(r["value"]["createdBy"] for r in silences)
                == ["alice"] * settings.partitions + ["bob"] * settings.partitions
            )
            # An integrator's rejected event names its key in the dead letter, by the unnamed key's name.
            pushed = http.post(
                "/v1/ingest/air", json=[{"sensorId": "air-nowhere"}], headers={"X-API-Key": INTEGRATOR_KEY}
            )
            assert pushed.status_code in (200, 207, 422), pushed.text
            [letter] = read_topic(settings, settings.dlq_topic, expect=1)
            assert letter["value"]["source"] == f"http POST /v1/ingest/air key={integrator_name}"
            answers = created.text + by_bob.text + pushed.text
    finally:
        assert api.stop() in (0, -15)
    log = api.log_file.read_text()
    assert "POST /v1/silences" in log and f"key={integrator_name}" in log  # the log is the API's
    for key in (ALICE_KEY, BOB_KEY, INTEGRATOR_KEY):
        assert key not in log and key not in answers, key


def test_wrong_keys_from_one_address_get_429_before_any_key_is_checked_while_other_addresses_are_served(
    settings, tmp_path
):
    api, port = api_process(settings, tmp_path, api_keys=KEYS, auth_failures_max=3)
    base = f"http://127.0.0.1:{port}"
    alice = {"X-API-Key": ALICE_KEY}
    # Two client addresses on the loopback network: the API sees 127.0.0.1 and 127.0.0.2.
    guesser = httpx.Client(base_url=base, timeout=30)
    colleague = httpx.Client(
        base_url=base, timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.2")
    )
    try:
        for guess in ("guess-1", "guess-2", "guess-3"):
            refused = guesser.get("/v1/picture", headers={"X-API-Key": guess})
            assert refused.status_code == 401, refused.text
        # The address is over the limit: even the good key is not checked.
        for path in ("/v1/picture", "/v1/alerts", "/ngsi-ld/v1/entities?type=AirQualityObserved"):
            blocked = guesser.get(path, headers=alice)
            assert blocked.status_code == 429, (path, blocked.text)
            assert 1 <= int(blocked.headers["Retry-After"]) <= settings.auth_failures_window_seconds
            assert "127.0.0.1" in blocked.text and "IOC_AUTH_FAILURES_MAX" in blocked.text
        # Without a key there is nothing to check: 401 as ever; public routes answer.
        assert guesser.get("/v1/picture").status_code == 401
        assert guesser.get("/healthz").status_code == 200
        # Another address with the good key is served; a wrong key from it is its own first failure.
        assert colleague.get("/v1/picture", headers=alice).status_code == 200
        assert colleague.get("/v1/picture", headers={"X-API-Key": "guess-4"}).status_code == 401
        assert colleague.get("/v1/picture", headers=alice).status_code == 200
    finally:
        guesser.close()
        colleague.close()
        assert api.stop() in (0, -15)
    log = api.log_file.read_text()
    assert "3 wrong API keys from 127.0.0.1 within 300 s" in log
    assert "guess-" not in log and ALICE_KEY not in log


def test_an_alertmanager_password_is_masked_in_the_notifier_log_its_report_and_metrics(settings, tmp_path):
    url = f"http://ioc:am-s3cret@127.0.0.1:{free_port()}"  # nothing listens: every attempt fails
    shown = url.replace("am-s3cret", "***")
    notifier = IocProcess(["notify"], settings, tmp_path / "notify.log", alertmanager_urls=url)
    store = connect_sync(settings, decode_responses=True)
    try:
        report = wait_for(
            lambda: store.hgetall(metrics_key(settings)).get(f"failures|{shown}"),
            timeout=60,
            processes=[notifier],
        )
        assert int(report) >= 1
        assert not any("s3cret" in field for field in store.hgetall(metrics_key(settings)))
        with TestClient(create_app(settings)) as client:
            scraped = client.get("/metrics").text
        assert f'ioc_notify_up{{alertmanager="{shown}"}} 0.0' in scraped and "s3cret" not in scraped
    finally:
        store.close()
        notifier.stop()
    log = notifier.log_file.read_text()
    assert shown in log and "s3cret" not in log
