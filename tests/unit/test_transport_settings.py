"""The transport security settings and the one client factory per server (no servers: what each client
is given)."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from pydantic import SecretStr, ValidationError

from connectors.kafka import aiokafka_options, faust_broker_options, kafka_python_options
from connectors.redis_client import redis_options
from ioc.infra.mosquitto import mqtt_address_of
from ioc.infra.secure import masked
from ioc.settings import Settings

CA = Path(__file__).parent / "ca-does-not-need-to-exist.pem"


def test_plaintext_by_default_for_every_client() -> None:
    settings = Settings(kafka_bootstrap="k1:9092,k2:9092")
    assert kafka_python_options(settings) == {
        "bootstrap_servers": "k1:9092,k2:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert aiokafka_options(settings) == kafka_python_options(settings)
    assert faust_broker_options(settings) == {
        "broker": ["kafka://k1:9092", "kafka://k2:9092"],
        "broker_credentials": None,
    }
    assert redis_options(settings) == {}
    assert not mqtt_address_of(settings).tls


def test_sasl_ssl_is_the_same_for_kafka_python_aiokafka_and_faust() -> None:
    settings = Settings(
        kafka_bootstrap="k1:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_username="ioc",
        kafka_password="s3cret",
    )
    common = {
        "bootstrap_servers": "k1:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "ioc",
        "sasl_plain_password": "s3cret",
    }
    sync = kafka_python_options(settings)
    assert sync == common | {"ssl_check_hostname": True, "ssl_cafile": None}
    asynchronous = aiokafka_options(settings)
    context = asynchronous.pop("ssl_context")
    assert asynchronous == common
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    credentials = faust_broker_options(settings)["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("ioc", "s3cret")
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(credentials)


def test_sasl_without_a_password_is_refused_and_the_error_shows_no_secret() -> None:
    with pytest.raises(ValidationError, match="IOC_KAFKA_USERNAME and IOC_KAFKA_PASSWORD"):
        Settings(kafka_security_protocol="SASL_SSL", kafka_username="ioc")
    with pytest.raises(ValidationError) as error:
        Settings(kafka_security_protocol="SASL_SSL", kafka_password="hunter2-hunter2")
    assert "hunter2" not in str(error.value)
    with pytest.raises(ValidationError):
        Settings(kafka_security_protocol="TLS")  # not a Kafka security protocol


def test_redis_credentials_and_ca_go_to_redis_py_and_the_url_wins() -> None:
    settings = Settings(
        redis_tls=True, redis_username="ioc", redis_password="pw", tls_ca_file=CA, redis_port=6390
    )
    assert settings.redis_address == "rediss://127.0.0.1:6390/0"
    assert redis_options(settings) == {
        "username": "ioc",
        "password": "pw",
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_certs": str(CA),
    }
    # No ssl_* arguments for a plain redis:// URL (redis-py's plain connection refuses them).
    plain = settings.model_copy(update={"redis_url": "redis://:other@cache:6379/0"})
    assert redis_options(plain) == {"username": "ioc", "password": "pw"}


def test_mqtt_takes_the_settings_credentials_when_the_url_names_no_user() -> None:
    settings = Settings(
        mqtt_tls=True, mqtt_port=8884, mqtt_username="bridge", mqtt_password="pw", mqtt_ca_file=CA
    )
    address = mqtt_address_of(settings)
    assert (address.tls, address.port, address.username, address.password) == (True, 8884, "bridge", "pw")
    assert address.ca_file == str(CA) and "pw" not in repr(address) and "pw" not in str(address)
    own = mqtt_address_of(settings.model_copy(update={"mqtt_url": "mqtts://sensor:x@mqtt.example"}))
    assert (own.host, own.port, own.username, own.password) == ("mqtt.example", 8883, "sensor", "x")


def test_one_ca_for_all_unless_a_server_has_its_own() -> None:
    own = Path("/etc/ioc/kafka-ca.pem")
    settings = Settings(tls_ca_file=CA, kafka_ca_file=own)
    assert (settings.ca_file("kafka"), settings.ca_file("redis"), settings.ca_file("mqtt")) == (own, CA, CA)


def test_the_printed_environment_masks_every_password() -> None:
    env = {"IOC_KAFKA_USERNAME": "ioc", "IOC_KAFKA_PASSWORD": "a", "IOC_REDIS_PASSWORD": "b"}
    env |= {"IOC_MQTT_PASSWORD": "c"}
    assert masked(env) == {
        "IOC_KAFKA_USERNAME": "ioc",
        "IOC_KAFKA_PASSWORD": "***",
        "IOC_REDIS_PASSWORD": "***",
        "IOC_MQTT_PASSWORD": "***",
    }
    assert isinstance(Settings(redis_password="x").redis_password, SecretStr)
