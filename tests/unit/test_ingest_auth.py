"""A caller is known by its key's name, never the key; all keys compared; wrong keys count per address."""

from __future__ import annotations

import json

from ioc.api import create_app
from ioc.api.auth import TOO_MANY_WRONG_KEYS, Caller, FailedLogins, identify, role_of
from ioc.settings import Role, Settings, parse_api_keys, unnamed_key_name

KEYS = parse_api_keys("operator:op-1,int-desk:integrator:int-1,integrator:int-2-longer,duty-admin:admin:adm")


def test_a_key_is_known_by_its_name_or_for_an_unnamed_one_by_role_and_digest():
    assert identify("int-1", KEYS) == Caller(Role.integrator, "int-desk")
    assert identify("adm", KEYS) == Caller(Role.admin, "duty-admin")
    unnamed = identify("int-2-longer", KEYS)
    assert unnamed == Caller(Role.integrator, unnamed_key_name("integrator", "int-2-longer"))
    assert unnamed.name.startswith("integrator-") and "int-2" not in unnamed.name
    assert role_of("op-1", KEYS) == Role.operator


def test_unknown_prefixes_and_extensions_of_a_key_are_unknown():
    for key in ("", "int", "int-1 ", "int-11", "INT-1", "adm\x00", "int-desk", "duty-admin"):
        assert identify(key, KEYS) is None, key
        assert role_of(key, KEYS) is None


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_refused_once_it_reached_the_limit_until_its_oldest_failure_leaves_the_window():
    clock = Clock()
    failures = FailedLogins(3, 60, clock=clock)
    assert failures.failed("10.0.0.1") is False
    clock.now += 10
    assert failures.failed("10.0.0.1") is False
    assert failures.retry_after("10.0.0.1") is None
    assert failures.failed("10.0.0.1") is True  # the third within 60 s
    assert failures.retry_after("10.0.0.1") == 50  # the first leaves the window at 1060
    assert failures.retry_after("10.0.0.2") is None  # another address is unaffected
    clock.now = 1060
    assert failures.retry_after("10.0.0.1") is None  # one more try…
    assert failures.failed("10.0.0.1") is True  # …and wrong again: refused until 1070
    assert failures.retry_after("10.0.0.1") == 10


def test_the_counter_forgets_the_quietest_address_past_its_size():
    failures = FailedLogins(1, 60, max_addresses=2, clock=Clock())
    for address in ("a", "b", "c"):
        failures.failed(address)
    assert failures.retry_after("a") is None
    assert failures.retry_after("b") is not None and failures.retry_after("c") is not None


def test_every_operation_that_checks_a_key_documents_the_wrong_key_429_once():
    app = create_app(Settings(_env_file=None, api_keys="operator:op-1"))
    first = json.dumps(app.openapi())
    document = app.openapi()  # built again from FastAPI's cached document: nothing added twice
    assert json.dumps(document) == first
    keyed = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answers = operation.get("responses", {})
            if "401" in answers:
                keyed += 1
                assert TOO_MANY_WRONG_KEYS in answers["429"]["description"], (method, path)
    assert keyed >= 20
    stream_429 = document["paths"]["/v1/stream"]["get"]["responses"]["429"]["description"]
    assert "IOC_STREAM_MAX_PER_KEY" in stream_429 and stream_429.count(TOO_MANY_WRONG_KEYS) == 1
