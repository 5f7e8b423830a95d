"""docker-compose.yml against the CLI and the settings, no engine needed (tests/compose runs it for real)."""

import re
from pathlib import Path

import pytest
import typer.main
import yaml

from ioc.cli import app
from ioc.settings import Settings
from tests.conftest import TEST_CARD_KEY

COMPOSE = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
IOC_SERVICES = {name: s for name, s in SERVICES.items() if s["command"][0] == "ioc"}
CLI = typer.main.get_command(app)
SECRETS = ("IOC_API_KEYS", "IOC_CARD_HMAC_KEY")  # compose's ``${NAME:?message}``: no default
# What an operator would set for the secrets compose refuses to start without.
REQUIRED = {
    "IOC_API_KEYS": "admin:admin-key-for-the-test",
    "IOC_CARD_HMAC_KEY": TEST_CARD_KEY,
    "IOC_REDIS_PASSWORD": "redis-password",
    "IOC_POSTGRES_PASSWORD": "postgres-password",
    "IOC_MQTT_PASSWORD": "mqtt-password",
}


def interpolated(value: object) -> str:
    """Compose's ``${NAME:-default}`` with nothing set in the environment, ``${NAME:?…}`` as set."""
    text = re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: REQUIRED[m[1]], str(value))
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def published(service: str) -> list[tuple[str, str]]:
    """A service's published ports as (host address, container port)."""
    ports = [interpolated(p).split(":") for p in SERVICES[service].get("ports", [])]
    return [(address, container) for address, _, container in ports]


@pytest.mark.parametrize("name", sorted(IOC_SERVICES))
def test_secrets_are_required_with_no_default(name):
    for secret in SECRETS:
        value = IOC_SERVICES[name]["environment"][secret]
        assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", value), value


def test_the_services_the_user_expects_are_there():
    servers = {"kafka", "redis", "mosquitto", "postgres", "alertmanager"}
    assert servers | {"worker", "api", "bridge", "history", "notify", "simulator"} <= set(SERVICES)
    assert "ports" not in SERVICES["worker"], "a worker publishing a port could not be scaled"
    assert SERVICES["simulator"]["profiles"] == ["demo"], "simulated readings only when asked"


def test_only_the_api_and_mqtt_are_published_and_on_loopback():
    assert {name for name in SERVICES if SERVICES[name].get("ports")} == {"api", "mosquitto"}
    assert {address for name in ("api", "mosquitto") for address, _ in published(name)} == {"127.0.0.1"}


@pytest.mark.parametrize("name", sorted(IOC_SERVICES))
def test_service_command_is_a_real_ioc_subcommand_with_real_options(name):
    _, *words = IOC_SERVICES[name]["command"]
    command = CLI
    while words and not words[0].startswith("--") and hasattr(command, "commands"):
        assert words[0] in command.commands, f"{name}: 'ioc … {words[0]}' does not exist"
        command = command.commands[words.pop(0)]
    known = {opt for param in command.params for opt in param.opts}
    assert {w for w in words if w.startswith("--")} <= known


@pytest.mark.parametrize("name", sorted(IOC_SERVICES))
def test_environment_names_are_settings_and_name_the_services(name):
    environment = IOC_SERVICES[name]["environment"]
    for variable in environment:
        assert variable.startswith("IOC_")
        assert variable.removeprefix("IOC_").lower() in Settings.model_fields, variable
    settings = Settings(**{k.removeprefix("IOC_").lower(): interpolated(v) for k, v in environment.items()})
    assert settings.bootstrap_servers == SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED"]
    assert settings.redis_url.startswith("redis://:redis-password@redis:6379")


def test_the_api_publishes_the_port_it_listens_on():
    command = IOC_SERVICES["api"]["command"]
    assert [container for _, container in published("api")] == [command[command.index("--port") + 1]]


def test_the_bridge_reads_the_mosquitto_service_with_its_user():
    bridge = IOC_SERVICES["bridge"]
    settings = Settings(mqtt_url=interpolated(bridge["environment"]["IOC_MQTT_URL"]))
    assert settings.mqtt_url == "mqtt://ioc:mqtt-password@mosquitto:1883"
    assert [container for _, container in published("mosquitto")] == ["1883"]
    assert interpolated(SERVICES["mosquitto"]["environment"]["MQTT_USERNAME"]) == "ioc"
