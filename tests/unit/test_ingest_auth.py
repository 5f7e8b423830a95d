"""Key ids for ingest: the role and the key's position, never the key; every key compared."""

from __future__ import annotations

from ioc.api.auth import Caller, identify, role_of
from ioc.settings import Role, parse_api_keys

KEYS = parse_api_keys("operator:op-1,integrator:int-1,integrator:int-2-longer,admin:adm")


def test_a_key_is_named_by_role_and_position():
    assert identify("int-1", KEYS) == Caller(Role.integrator, "integrator#2")
    assert identify("int-2-longer", KEYS) == Caller(Role.integrator, "integrator#3")
    assert identify("adm", KEYS) == Caller(Role.admin, "admin#4")
    assert role_of("op-1", KEYS) == Role.operator


def test_unknown_prefixes_and_extensions_of_a_key_are_unknown():
    for key in ("", "int", "int-1 ", "int-11", "INT-1", "adm\x00"):
        assert identify(key, KEYS) is None, key
        assert role_of(key, KEYS) is None
