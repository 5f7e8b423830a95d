import hashlib

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from ioc.cli import app
from ioc.settings import (
    ApiKey,
    Role,
    Settings,
    mask_password,
    parse_api_keys,
    parse_api_keys_file,
    unnamed_key_name,
)


def sha256(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def test_api_keys_parse_into_names_roles_and_digests():
    assert parse_api_keys("operator:abc, admin:x:y, alice:operator:k:1,") == [
        ApiKey(f"operator-{sha256('abc').hex()[:6]}", Role.operator, sha256("abc")),
        ApiKey(unnamed_key_name("admin", "x:y"), Role.admin, sha256("x:y")),  # a key may hold ':'
        ApiKey("alice", Role.operator, sha256("k:1")),
    ]


@pytest.mark.parametrize(
    "spec", ["operator", "viewer:abc", "operator:", "alice:viewer:k", "alice:operator:", "al ice:admin:k"]
)
def test_malformed_api_keys_are_an_error(spec):
    with pytest.raises(ValueError):
        parse_api_keys(spec)


def test_a_malformed_entry_is_named_by_position_never_by_its_text():
    with pytest.raises(ValueError) as refused:
        parse_api_keys("alice:operator:k1,a-secret-key-without-a-role")
    assert "entry 2" in str(refused.value) and "a-secret" not in str(refused.value)


@pytest.mark.parametrize(
    "spec",
    ["alice:operator:k1,alice:admin:k2", "alice:operator:k1,bob:admin:k1", "operator:k1,operator:k1"],
)
def test_a_name_or_a_key_listed_twice_is_an_error(spec):
    with pytest.raises(ValueError, match="twice|more than one"):
        parse_api_keys(spec)


def test_a_keys_file_holds_names_roles_and_digests(tmp_path):
    text = f"# duty desk\nalice:operator:{sha256('k1').hex()}\n\n  bob:admin:{sha256('k2').hex().upper()}\n"
    assert parse_api_keys_file(text) == [
        ApiKey("alice", Role.operator, sha256("k1")),
        ApiKey("bob", Role.admin, sha256("k2")),
    ]
    path = tmp_path / "keys"
    path.write_text(text)
    settings = Settings(_env_file=None, api_keys="integrator:k3", api_keys_file=path)
    assert [key.name for key in settings.api_key_entries()] == [
        unnamed_key_name("integrator", "k3"),
        "alice",
        "bob",
    ]


@pytest.mark.parametrize(
    "line", ["alice:operator:k1", "alice:operator", f"alice:viewer:{'0' * 64}", f"alice:operator:{'0' * 63}"]
)
def test_a_malformed_keys_file_line_is_an_error_naming_the_line(tmp_path, line):
    path = tmp_path / "keys"
    path.write_text(f"bob:admin:{'1' * 64}\n{line}\n")
    with pytest.raises(ValidationError, match="line 2") as refused:
        Settings(_env_file=None, api_keys_file=path)
    assert "k1" not in str(refused.value)


def test_a_keys_file_that_cannot_be_read_or_repeats_a_name_of_ioc_api_keys_is_an_error(tmp_path):
    with pytest.raises(ValidationError, match="IOC_API_KEYS_FILE .* cannot be read"):
        Settings(_env_file=None, api_keys_file=tmp_path / "missing")
    path = tmp_path / "keys"
    path.write_text(f"alice:admin:{'1' * 64}\n")
    with pytest.raises(ValidationError, match="'alice' is given to more than one key"):
        Settings(_env_file=None, api_keys="alice:operator:k1", api_keys_file=path)


def test_api_keys_are_a_secret_never_shown(monkeypatch):
    monkeypatch.setenv("IOC_API_KEYS", "alice:operator:very-secret-key")
    settings = Settings(_env_file=None)
    for shown in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        repr(settings.api_key_entries()),
    ):
        assert "very-secret-key" not in shown
        assert sha256("very-secret-key").hex() not in shown
    monkeypatch.setenv("IOC_API_KEYS", "alice:viewer:very-secret-key")
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    assert "very-secret-key" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://default:p@ss/w@cache:6380", "rediss://default:***@cache:6380"),  # an unencoded @
        ("postgresql://ioc:pw@db:5432/ioc", "postgresql://ioc:***@db:5432/ioc"),
        ("postgresql://ioc@db:5432/ioc", "postgresql://ioc@db:5432/ioc"),
        ("mqtt://bridge:pw@broker:1883", "mqtt://bridge:***@broker:1883"),
        ("http://am1:9093,https://ioc:pw@am2:9093", "http://am1:9093,https://ioc:***@am2:9093"),
        ("broker1:9092,broker2:9092", "broker1:9092,broker2:9092"),
    ],
)
def test_urls_are_shown_with_their_password_masked(url, shown):
    assert mask_password(url) == shown


def test_settings_read_the_ioc_env_prefix(monkeypatch):
    monkeypatch.setenv("IOC_TOPIC_PREFIX", "replay1")
    monkeypatch.setenv("IOC_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("IOC_API_KEYS", "viewer:abc")
    with pytest.raises(ValidationError, match="IOC_API_KEYS entry 1 .* one of operator, integrator, admin"):
        Settings()
    monkeypatch.setenv("IOC_API_KEYS", "operator:abc")
    settings = Settings()
    assert settings.raw_topic("air") == "replay1.air.raw"
    assert settings.agg_topic("air") == "replay1.air.agg.1m"
    assert settings.dlq_topic == "replay1.dlq"
    assert settings.bootstrap_servers == "k1:9092,k2:9092"


def test_local_defaults():
    settings = Settings(
        _env_file=None, kafka_bootstrap=None, redis_url=None, kafka_port=9999, redis_port=7000
    )
    assert settings.bootstrap_servers == "127.0.0.1:9999"
    assert settings.redis_address == "redis://127.0.0.1:7000/0"
    assert settings.redis_key("agg", "air") == "ioc:agg:air"


def test_reading_intervals_are_each_periodic_feeds_own_and_the_environment_replaces_them(monkeypatch):
    monkeypatch.delenv("IOC_READING_INTERVAL_SECONDS", raising=False)
    # Transit is not listed: taps come when riders do.
    assert Settings(_env_file=None).reading_interval_seconds == {
        "traffic": 300,
        "air": 60,
        "water": 900,
        "crowd": 300,
    }
    monkeypatch.setenv("IOC_READING_INTERVAL_SECONDS", '{"air": 120}')
    assert Settings(_env_file=None).reading_interval_seconds == {"air": 120}


def test_ioc_infra_status_shows_external_addresses_with_their_passwords_masked(tmp_path):
    env = {
        "IOC_RUN_DIR": str(tmp_path),
        "IOC_REDIS_URL": "redis://:redis-pw@cache:6379/0",
        "IOC_DATABASE_URL": "postgresql://ioc:pg-pw@db:5432/ioc",
        "IOC_MQTT_URL": "mqtt://bridge:mqtt-pw@broker:1883",
        "IOC_ALERTMANAGER_URLS": "https://ioc:am-pw@am:9093",
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, ["infra", "status"], env=env)
    assert result.exit_code == 0, result.output
    for shown in (
        "redis://:***@cache",
        "postgresql://ioc:***@db",
        "mqtt://bridge:***@broker",
        "https://ioc:***@am",
    ):
        assert shown in result.output
    assert "-pw" not in result.output
