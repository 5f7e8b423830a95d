"""District-scoped operator keys (issue 16, least privilege): how ``IOC_API_KEYS`` and the keys file
write a scope, and the forms refused at startup."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from ioc.api.auth import identify
from ioc.settings import Role, Settings, key_digest, parse_api_keys, parse_api_keys_file, unnamed_key_name


def test_a_role_scoped_to_districts_in_named_and_unnamed_entries():
    keys = parse_api_keys("alice:operator@dong-da+ba-dinh:k1, operator@hoan-kiem:k2, bob:operator:k3")
    assert [(k.name, k.role, k.districts) for k in keys] == [
        ("alice", Role.operator, frozenset({"dong-da", "ba-dinh"})),
        (unnamed_key_name("operator", "k2"), Role.operator, frozenset({"hoan-kiem"})),
        ("bob", Role.operator, None),  # no scope: the whole city, as before
    ]
    # The key is what follows the role, scope and all: a key may still hold ':' and '@'.
    [key] = parse_api_keys("carol:operator@tay-ho:s3cr@t:x")
    assert key.digest == key_digest("s3cr@t:x") and key.districts == frozenset({"tay-ho"})


def test_a_scoped_key_identifies_its_caller_with_the_districts():
    keys = parse_api_keys("alice:operator@dong-da:k1,admin:k2")
    alice, admin = identify("k1", keys), identify("k2", keys)
    assert alice is not None and alice.districts == frozenset({"dong-da"})
    assert alice.sees("dong-da") and not alice.sees("hoan-kiem") and not alice.sees(None)
    assert admin is not None and admin.districts is None and admin.sees("hoan-kiem") and admin.sees(None)


def test_a_keys_file_line_may_carry_a_scope(tmp_path):
    digest = hashlib.sha256(b"k1").hexdigest()
    [key] = parse_api_keys_file(f"alice:operator@cau-giay+tay-ho:{digest}\n")
    assert key.districts == frozenset({"cau-giay", "tay-ho"}) and key.digest == key_digest("k1")
    path = tmp_path / "keys"
    path.write_text(f"alice:operator@nowhere:{digest}\n")
    with pytest.raises(ValidationError, match="key alice is scoped to unknown district 'nowhere'"):
        Settings(_env_file=None, api_keys_file=path)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("alice:admin@dong-da:k", "the admin role cannot be scoped to districts"),
        ("integrator@dong-da:k", "the integrator role cannot be scoped to districts"),
        ("alice:operator@:k", "a scope is '@' then district ids joined by '\\+'"),
        ("alice:operator@dong-da+:k", "a scope is '@' then district ids"),
        ("alice:operator@Dong Da:k", "a scope is '@' then district ids"),
        ("alice:operator@dong-da++tay-ho:k", "a scope is '@' then district ids"),
    ],
)
def test_malformed_scopes_are_an_error_naming_the_entry_never_its_text(spec, message):
    with pytest.raises(ValueError, match=message) as raised:
        parse_api_keys(spec)
    assert "entry 1" in str(raised.value) and ":k" not in str(raised.value)


def test_an_unknown_district_is_a_startup_error_naming_it_and_the_known_ones():
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, api_keys="alice:operator@dong-da+ha-noi-cu:k1")
    text = str(raised.value)
    assert "key alice is scoped to unknown district 'ha-noi-cu'" in text and "dong-da" in text
    assert "k1" not in text
    settings = Settings(_env_file=None, api_keys="alice:operator@dong-da+hoan-kiem:k1")
    assert settings.api_key_entries()[0].districts == frozenset({"dong-da", "hoan-kiem"})
