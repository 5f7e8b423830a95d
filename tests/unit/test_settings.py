import pytest
from pydantic import ValidationError

from ioc.settings import Role, Settings, parse_api_keys


def test_api_keys_parse_into_roles():
    assert parse_api_keys("operator:abc, admin:x:y,") == {"abc": Role.operator, "x:y": Role.admin}


@pytest.mark.parametrize("spec", ["operator", "viewer:abc", "operator:"])
def test_malformed_api_keys_are_an_error(spec):
    with pytest.raises(ValueError):
        parse_api_keys(spec)


def test_settings_read_the_ioc_env_prefix(monkeypatch):
    monkeypatch.setenv("IOC_TOPIC_PREFIX", "replay1")
    monkeypatch.setenv("IOC_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("IOC_API_KEYS", "viewer:abc")
    with pytest.raises(ValidationError, match="viewer"):
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
