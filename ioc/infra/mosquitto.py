"""A development MQTT broker: Debian's Mosquitto on 127.0.0.1, under ``settings.run_dir/mosquitto``.

Anonymous access and no persistence: this broker is for a developer's machine and the tests only; with
``IOC_MQTT_TLS`` (``ioc infra up --secure``) it takes TLS connections only, from its one user (a password
file). A production broker is external (``IOC_MQTT_URL``) and has its own users, TLS and persistence.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ioc.infra import secure
from ioc.infra.process import (
    InfraError,
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
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None  # the CA the broker's certificate is checked with; None: the system's

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


def mqtt_address_of(settings: Settings) -> MqttAddress:
    """The settings' MQTT broker: ``mqtt_address`` with ``mqtt_username``/``mqtt_password`` when the URL
    names no user, and the CA of ``mqtt_ca_file`` (or ``tls_ca_file``)."""
    address = parse_mqtt_url(settings.mqtt_address)
    if address.username is None and settings.mqtt_username:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        address = replace(address, username=settings.mqtt_username, password=password)
    ca_file = settings.ca_file("mqtt")
    return replace(address, ca_file=str(ca_file)) if ca_file else address


def new_client(address: MqttAddress, client_id: str = "", **options: object) -> mqtt.Client:
    """The one MQTT client factory: a paho (MQTT 5) client configured for ``address`` (credentials, TLS
    checking the broker's certificate and host name), not yet connected."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, **options)
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(ca_certs=address.ca_file)
    return client


def mqtt_answers(url: str | MqttAddress, timeout: float = 2.0) -> bool:
    """One readiness probe: the broker accepts an MQTT connection (CONNACK success)."""
    address = url if isinstance(url, MqttAddress) else parse_mqtt_url(url)
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


def wait_for_mqtt(url: str | MqttAddress, timeout: float) -> None:
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
    def secure(self) -> bool:
        """TLS only and a password file (``ioc infra up --secure``): what the settings' clients expect."""
        return self.settings.mqtt_tls

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.secure else 'mqtt'}://127.0.0.1:{self.settings.mqtt_port}"

    def answers(self) -> bool:
        """Mosquitto accepts an MQTT connection (as the settings' clients connect)."""
        return mqtt_answers(mqtt_address_of(self.settings.model_copy(update={"mqtt_url": None})))

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
        if self.secure:
            cert, key = secure.server_files(self.settings)
            access = [
                "# Generated by ioc infra up --secure; rewritten on every start. TLS, one user.",
                f"listener {self.settings.mqtt_port} 127.0.0.1",
                f"cafile {secure.ca_file(self.settings)}",
                f"certfile {cert}",
                f"keyfile {key}",
                "tls_version tlsv1.2",  # the oldest accepted
                "allow_anonymous false",
                f"password_file {self.password_file}",
            ]
        else:
            access = [
                "# Generated by ioc infra; rewritten on every start. For development only: anonymous access.",
                f"listener {self.settings.mqtt_port} 127.0.0.1",
                "allow_anonymous true",
            ]
        lines = [
            *access,
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

    @property
    def password_file(self) -> Path:
        return self.home / "passwd"

    def _write_password_file(self) -> None:
        """The one user's password file, hashed by mosquitto_passwd (the clear password is written to it
        first, mode 0600, then hashed in place: it never appears on a command line)."""
        settings = self.settings
        if not settings.mqtt_username or settings.mqtt_password is None:
            raise InfraError("a secured local Mosquitto needs IOC_MQTT_USERNAME and IOC_MQTT_PASSWORD")
        tool = find_binary("mosquitto_passwd")
        if tool is None:
            raise InfraError(
                "mosquitto_passwd (Debian's mosquitto package) is needed for a secured Mosquitto"
            )
        self.password_file.unlink(missing_ok=True)
        descriptor = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(f"{settings.mqtt_username}:{settings.mqtt_password.get_secret_value()}\n")
        result = subprocess.run(
            [tool, "-U", str(self.password_file)], capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0:
            self.password_file.unlink(missing_ok=True)
            raise InfraError(f"mosquitto_passwd failed: {result.stderr.strip()[-500:]}")

    def _launch(self) -> None:
        self.check_ports()
        binary = self.ensure_installed()
        self.home.mkdir(parents=True, exist_ok=True)
        if self.secure:
            secure.ensure_certificates(self.settings)
            self._write_password_file()
        self.config.write_text(self.mosquitto_conf())
        log.info("starting Mosquitto on %s…", self.url)
        self._spawn([binary, "-c", str(self.config)])
