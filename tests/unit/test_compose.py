"""docker-compose.yml cannot run here (no Docker engine); check it against the CLI and the settings."""

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
IOC_SERVICES = {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("ioc")}
CLI = typer.main.get_command(app)


# What the operator must set (compose's ``${NAME:?message}``: no default, compose refuses to start).
REQUIRED = {"IOC_CARD_HMAC_KEY": TEST_CARD_KEY}


def interpolated(environment: dict[str, str]) -> dict[str, str]:
    """Compose's ``${NAME:-default}`` with nothing set in the environment, ``${NAME:?…}`` as set."""
    values = {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in environment.items()}
    return {k: re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: REQUIRED[m[1]], v) for k, v in values.items()}


@pytest.mark.parametrize("name", ["worker", "api", "simulator", "bridge"])
def test_the_card_key_is_required_with_no_default(name):
    value = SERVICES[name]["environment"]["IOC_CARD_HMAC_KEY"]
    assert re.fullmatch(r"\$\{IOC_CARD_HMAC_KEY:\?[^}]+\}", value), value


def test_the_services_the_user_expects_are_there():
    assert {"kafka", "redis", "mosquitto", "worker", "api", "simulator", "bridge"} <= set(SERVICES)
    assert set(IOC_SERVICES) == {"worker", "api", "simulator", "bridge"}
    assert "ports" not in SERVICES["worker"], "a worker publishing a port could not be scaled"


@pytest.mark.parametrize("name", sorted(IOC_SERVICES))
def test_service_command_is_a_real_ioc_subcommand_with_real_options(name):
    subcommand, *args = IOC_SERVICES[name]["command"]
    assert subcommand in CLI.commands, f"{name}: 'ioc {subcommand}' does not exist"
    known = {opt for param in CLI.commands[subcommand].params for opt in param.opts}
    assert {a for a in args if a.startswith("--")} <= known


@pytest.mark.parametrize("name", sorted(IOC_SERVICES))
def test_environment_names_are_settings(name):
    for variable in IOC_SERVICES[name]["environment"]:
        assert variable.startswith("IOC_")
        assert variable.removeprefix("IOC_").lower() in Settings.model_fields, variable
    environment = interpolated(IOC_SERVICES[name]["environment"])
    settings = Settings(**{k.removeprefix("IOC_").lower(): v for k, v in environment.items()})
    kafka_port = SERVICES["kafka"]["environment"]["KAFKA_LISTENERS"].split(",")[0].rsplit(":", 1)[1]
    assert settings.bootstrap_servers == f"kafka:{kafka_port}"
    assert settings.redis_address.startswith("redis://redis:6379")


def test_api_port_matches_its_setting():
    api = IOC_SERVICES["api"]
    port = api["environment"]["IOC_API_PORT"]
    assert [p.split(":")[1] for p in api["ports"]] == [port]


def test_bridge_reads_the_mosquitto_service():
    bridge = IOC_SERVICES["bridge"]
    group, command = bridge["command"]
    assert command in CLI.commands[group].commands, f"'ioc {group} {command}' does not exist"
    settings = Settings(mqtt_url=bridge["environment"]["IOC_MQTT_URL"])
    published = [p.split(":")[1] for p in SERVICES["mosquitto"]["ports"]]
    assert settings.mqtt_address == f"mqtt://mosquitto:{published[0]}"
    assert set(bridge["depends_on"]) == {"kafka", "mosquitto"}
