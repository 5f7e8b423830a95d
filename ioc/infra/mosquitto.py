"""A development MQTT broker: Debian's Mosquitto on 127.0.0.1, under ``settings.run_dir/mosquitto``.

Anonymous access and no persistence: this broker is for a developer's machine and the tests only. A
production broker is external (``IOC_MQTT_URL``) and has its own users, TLS and persistence.
"""

from __future__ import annotations

import getpass
import logging
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ioc.infra.process import (
    LocalService,
    ensure_debian_package,
    find_binary,
    wait_until,
)
from ioc.settings import Settings, mask_password

log = logging.getLogger("ioc.infra")

SCHEMES = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}


@dataclass(frozen=True)
class MqttAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:  # never shows the password
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttAddress:
    """``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS; plain ``host:port`` works too)."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ValueError(f"{url!r} is not an MQTT URL like mqtt://host:1883 or mqtts://host:8883")
    return MqttAddress(
        host=parts.hostname,
        port=parts.port or SCHEMES[parts.scheme],
        tls=parts.scheme in ("mqtts", "ssl"),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def new_client(address: MqttAddress, client_id: str = "", **options: object) -> mqtt.Client:
    """A paho (MQTT 5) client configured for ``address``: credentials and TLS, not yet connected."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, **options)
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set()
    return client


def mqtt_answers(url: str, timeout: float = 2.0) -> bool:
    """One readiness probe: the broker accepts an MQTT connection (CONNACK success)."""
    address = parse_mqtt_url(url)
    client = new_client(address, client_id=f"ioc-probe-{uuid.uuid4().hex[:8]}")
    try:
        client.connect(address.host, address.port, keepalive=10)
        deadline = time.monotonic() + timeout
        while not client.is_connected() and time.monotonic() < deadline:
            if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                return False
        if not client.is_connected():
            return False
        client.disconnect()
        client.loop(timeout=0.1)  # sends the DISCONNECT, so the broker logs a clean goodbye
        return True
    except (OSError, ValueError):
        return False


def wait_for_mqtt(url: str, timeout: float) -> None:
    """Block until the MQTT broker at ``url`` accepts a connection; TimeoutError otherwise."""
    try:
        wait_until(lambda: mqtt_answers(url), timeout, f"MQTT broker at {url}", interval=0.2)
    except TimeoutError:
        raise TimeoutError(
            f"the MQTT broker at {url} did not accept a connection within {timeout:.0f} s"
        ) from None


class LocalMosquitto(LocalService):
    name = "mosquitto"
    title = what = "Mosquitto"
    not_ready = "Mosquitto on {address} did not accept an MQTT connection within {timeout:.0f} s"
    start_timeout = 30
    probe_interval = 0.2

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.external_address = mask_password(settings.mqtt_url) if settings.mqtt_url else None
        self.address = self.url
        self.config = self.home / "mosquitto.conf"
        # The config path is unique per run_dir, so two run_dirs never claim each other's broker.
        self.marker = str(self.config)
        self.log_file = self.home / "mosquitto.log"
        self.stdout_file = self.home / "mosquitto.out"
        self.output_files = (self.stdout_file, self.log_file)
        self.ports = [(settings.mqtt_port, "MQTT", "IOC_MQTT_PORT")]

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.settings.mqtt_port}"

    def answers(self) -> bool:
        """Mosquitto accepts an MQTT connection."""
        return mqtt_answers(self.url)

    @cached_property
    def version(self) -> str | None:
        binary = find_binary("mosquitto")
        if binary is None:
            return None
        # `mosquitto -h` prints "mosquitto version 2.0.11" and the usage, and exits non-zero.
        result = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=10)
        match = re.search(r"mosquitto version (\S+)", result.stdout + result.stderr)
        return match.group(1) if match else None

    def ensure_installed(self) -> str:
        """Path of mosquitto; installs Debian's package when missing and we are root."""
        path = ensure_debian_package("mosquitto", "mosquitto", "set IOC_MQTT_URL to use an existing broker")
        self.__dict__.pop("version", None)  # a cached "not installed" answer may now be wrong
        return path

    def mosquitto_conf(self) -> str:
        lines = [
            "# Generated by ioc infra; rewritten on every start. For development only: anonymous access.",
            f"listener {self.settings.mqtt_port} 127.0.0.1",
            "allow_anonymous true",
            # Sessions and queued messages live in memory: a broker restart starts empty.
            "persistence false",
            # Hold plenty for a bridge that is down (default 1000, then messages are dropped); no cap
            # on how many QoS 1 messages are in flight to one client beyond what it asks for.
            "max_queued_messages 100000",
            "max_inflight_messages 0",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "connection_messages true",
            # Started as root, Mosquitto would switch to the user "mosquitto", who cannot write the run
            # dir; stay whoever started it.
            f"user {getpass.getuser()}",
        ]
        return "\n".join(lines) + "\n"

    def _launch(self) -> None:
        self.check_ports()
        binary = self.ensure_installed()
        self.home.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self.mosquitto_conf())
        log.info("starting Mosquitto on %s…", self.url)
        self._spawn([binary, "-c", str(self.config)])
