"""The one settings object. Every knob is an environment variable with the prefix ``IOC_``.

``IOC_KAFKA_BOOTSTRAP=broker:9092 ioc worker`` uses an existing broker; left unset, the local
infrastructure manager (``ioc infra up``) starts one on ``127.0.0.1:IOC_KAFKA_PORT``.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ioc.city import load_city
from ioc.feeds import FEEDS, REGISTRY
from ioc.windows import WindowSpec, window_seconds

# How far ahead of the receiving clock an event time may be. Five minutes: well above the skew of an
# NTP-synchronised sensor or producer clock (and a reading stamped at the end of its averaging minute),
# and no more than the allowed lateness, so a reading that far ahead cannot move its sensor's
# watermark enough to make the sensor's on-time readings late. A reading dated years ahead would.
DEFAULT_FUTURE_TOLERANCE_SECONDS = 300


# The card HMAC key: 32 random bytes or more, written as hexadecimal (64+ characters).
CARD_KEY_MIN_HEX = 64
CARD_KEY_HOWTO = 'make one with: python -c "import secrets; print(secrets.token_hex(32))"'


def check_card_key(value: str) -> str:
    """``value`` if it is a card HMAC key of at least 32 bytes in hexadecimal; else a ValueError that
    names the variable and never the value."""
    text = value.strip()
    if len(text) < CARD_KEY_MIN_HEX or any(c not in string.hexdigits for c in text):
        raise ValueError(
            f"IOC_CARD_HMAC_KEY must be at least {CARD_KEY_MIN_HEX} hexadecimal characters (32 random "
            f"bytes); {CARD_KEY_HOWTO}"
        )
    return text


class Role(StrEnum):
    operator = "operator"
    integrator = "integrator"
    admin = "admin"


# A key's name appears in the audit trail (acknowledged_by, createdBy), logs and Redis keys: plain words.
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


# A district id in a key's scope (``operator@dong-da+ba-dinh``): the registry's ids are lowercase words.
DISTRICT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
# Roles a key may be scoped to districts: an operator works the district's picture; an integrator's events
# and an admin's powers are city-wide by nature, so a scope there would be a promise nothing keeps.
SCOPED_ROLES = frozenset({Role.operator})


@dataclass(frozen=True)
class ApiKey:
    """One API key as the server holds it: its name, its role, the districts it is scoped to (None: the
    whole city) and the SHA-256 of the key, never the key."""

    name: str
    role: Role
    digest: bytes = field(repr=False)
    districts: frozenset[str] | None = None


def key_digest(key: str) -> bytes:
    """SHA-256 of a key, as ``IOC_API_KEYS_FILE`` holds it (hexadecimal there)."""
    return hashlib.sha256(key.encode()).digest()


def unnamed_key_name(role: Role | str, key: str) -> str:
    """The name of a ``role:key`` entry: its role and 6 hexadecimal digits of the key's SHA-256 (stable
    across restarts, and nothing an attacker can use)."""
    return f"{role}-{key_digest(key).hex()[:6]}"


def _role(text: str, where: str) -> Role:
    if text not in Role.__members__:
        raise ValueError(f"{where}: the role is not one of {', '.join(Role)}")  # not echoed: it may be a key
    return Role(text)


def _scoped_role(text: str, where: str) -> tuple[Role, frozenset[str] | None]:
    """``operator`` or ``operator@dong-da+ba-dinh``: the role and its districts (None: the whole city).
    The districts are checked against the city registry with the rest of the settings."""
    role_text, at, scope = text.partition("@")
    role = _role(role_text, where)
    if not at:
        return role, None
    districts = scope.split("+")
    if not all(DISTRICT_ID.fullmatch(d) for d in districts):
        # The text may be a mistyped key: not echoed.
        raise ValueError(
            f"{where}: a scope is '@' then district ids joined by '+' (operator@dong-da+ba-dinh)"
        )
    if role not in SCOPED_ROLES:
        raise ValueError(
            f"{where}: the {role} role cannot be scoped to districts (only {', '.join(sorted(SCOPED_ROLES))} "
            "keys can: an integrator's events and an admin's powers are city-wide)"
        )
    return role, frozenset(districts)


def _is_role(text: str) -> bool:
    """True for ``operator`` or ``operator@…``: the start of an unnamed entry (no name is a role)."""
    return text.partition("@")[0] in Role.__members__


def _name(text: str, where: str) -> str:
    if not KEY_NAME.fullmatch(text):
        raise ValueError(
            f"{where}: a key's name is 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a "
            "letter or digit"
        )
    return text


def parse_api_keys(spec: str) -> list[ApiKey]:
    """Parse ``IOC_API_KEYS``: comma-separated ``name:role:key`` or ``role:key`` entries (a key may hold
    ':'; an entry that starts with a role is ``role:key``, so no name is a role, nor starts with
    ``role@``). The role may carry a scope, ``operator@dong-da+ba-dinh``: the key sees and acts on those
    districts only. A malformed entry is an error naming its position, never its text (it holds a key)."""
    keys: list[ApiKey] = []
    for position, entry in enumerate(filter(None, (e.strip() for e in spec.split(","))), start=1):
        where = f"IOC_API_KEYS entry {position}"
        first, sep, rest = entry.partition(":")
        if not sep or not rest:
            raise ValueError(f"{where} must be 'name:role:key' or 'role:key'")
        if _is_role(first):
            role, districts = _scoped_role(first, where)
            keys.append(ApiKey(unnamed_key_name(role, rest), role, key_digest(rest), districts))
            continue
        role_text, sep, key = rest.partition(":")
        if not sep or not key:
            raise ValueError(
                f"{where} must be 'name:role:key' or 'role:key', the role one of {', '.join(Role)}"
            )
        role, districts = _scoped_role(role_text, where)
        keys.append(ApiKey(_name(first, where), role, key_digest(key), districts))
    return _unique(keys, "IOC_API_KEYS")


def parse_api_keys_file(text: str, path: Path | str = "IOC_API_KEYS_FILE") -> list[ApiKey]:
    """Parse a keys file: one ``name:role:sha256-hex-of-the-key`` a line (the role optionally scoped,
    ``operator@dong-da+ba-dinh``); blank lines and ``#`` comments are skipped. The server never holds the
    keys themselves."""
    keys: list[ApiKey] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"IOC_API_KEYS_FILE {path} line {number}"
        parts = line.split(":")
        if len(parts) != 3 or not SHA256_HEX.fullmatch(parts[2]):
            raise ValueError(f"{where} must be 'name:role:<64 hexadecimal digits of the key's SHA-256>'")
        name, role_text, digest = parts
        role, districts = _scoped_role(role_text, where)
        keys.append(ApiKey(_name(name, where), role, bytes.fromhex(digest), districts))
    return _unique(keys, "IOC_API_KEYS_FILE")


def _unique(keys: list[ApiKey], where: str) -> list[ApiKey]:
    """``keys`` when no two share a name or a key (either would make the audit trail ambiguous)."""
    names = [key.name for key in keys]
    if repeated := sorted({name for name in names if names.count(name) > 1}):
        raise ValueError(f"{where}: the name {repeated[0]!r} is given to more than one key")
    if len({key.digest for key in keys}) < len(keys):
        raise ValueError(f"{where}: the same key is listed twice")
    return keys


def check_key_districts(keys: list[ApiKey], known: set[str], where: str) -> None:
    """A ValueError naming the first key (by name) scoped to a district ``known`` does not hold."""
    for key in keys:
        if unknown := sorted((key.districts or frozenset()) - known):
            raise ValueError(
                f"{where}: key {key.name} is scoped to unknown district {unknown[0]!r}; the city registry's "
                f"districts are {', '.join(sorted(known))}"
            )


def mask_password(url: str) -> str:
    """``url`` as it may be shown: the password of each comma-separated URL, if any, as ***
    (``redis://:***@host:6379/0``)."""
    # Up to the last '@': a password with an unencoded '@' is masked whole.
    return ",".join(re.sub(r"(://[^:/@]*:).*@", r"\1***@", part) for part in url.split(","))


class Settings(BaseSettings):
    # hide_input_in_errors: a rejected value (a secret among them) is never echoed in the error.
    model_config = SettingsConfigDict(
        env_prefix="IOC_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    # Kafka: an existing cluster, or the local broker started by `ioc infra up`.
    kafka_bootstrap: str | None = Field(
        None, description="Existing Kafka bootstrap servers (host:port,…); when set, nothing is started."
    )
    kafka_port: int = Field(9092, description="Port of the local Kafka broker.")
    kafka_controller_port: int = Field(9093, description="Port of the local KRaft controller.")
    kafka_version: str = Field("3.9.2", description="Apache Kafka version fetched from Maven Central.")
    kafka_heap: str = Field("-Xms512m -Xmx1g", description="JVM heap options of the local broker.")
    partitions: int = Field(4, ge=1, description="Partitions of every ioc topic (the unit of parallelism).")
    replication_factor: int = Field(1, ge=1, description="Replication factor of the topics ioc creates.")
    topic_prefix: str = Field("ioc", description="Prefix of every topic: <prefix>.<feed>.raw, <prefix>.dlq …")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How every Kafka client (Faust, aiokafka, kafka-python) connects: SASL_SSL for TLS and "
        "SCRAM; `ioc infra up --secure` starts the local broker that way.",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism with SASL_PLAINTEXT and SASL_SSL."
    )
    kafka_username: str | None = Field(None, description="Kafka SASL user (SASL_* protocols).")
    kafka_password: SecretStr | None = Field(None, description="Kafka SASL password (SASL_* protocols).")
    kafka_ca_file: Path | None = Field(
        None,
        description="CA certificate(s) (PEM) Kafka's TLS certificate is checked with; default tls_ca_file.",
    )

    # Redis: an existing server, or the local one started by `ioc infra up`.
    redis_url: str | None = Field(None, description="Existing Redis URL; when set, nothing is started.")
    redis_port: int = Field(6379, description="Port of the local Redis server.")
    redis_tls: bool = Field(
        False, description="The local Redis (redis_url unset) is reached over TLS (rediss://)."
    )
    redis_username: str | None = Field(
        None, description="Redis ACL user, when redis_url names none (`ioc infra up --secure` makes one)."
    )
    redis_password: SecretStr | None = Field(
        None, description="Password of the Redis ACL user, when redis_url has none."
    )
    redis_ca_file: Path | None = Field(
        None,
        description="CA certificate(s) (PEM) Redis's TLS certificate is checked with; default tls_ca_file.",
    )
    redis_prefix: str = Field("ioc", description="Prefix of every Redis key.")

    # PostgreSQL, the history store: an existing server, or the local one started by `ioc infra up`.
    database_url: str | None = Field(
        None,
        description="Existing PostgreSQL (postgresql://user:password@host:port/database); when set, nothing "
        "is started.",
    )
    postgres_port: int = Field(
        5433, description="Port of the local PostgreSQL (5432 is left to the system's)."
    )
    database_pool_size: int = Field(
        8,
        ge=1,
        description="PostgreSQL connections one API process keeps for its history, KPI and NGSI-LD temporal "
        "reads (opened as needed, reused, closed after 10 idle minutes): the reads it runs at once; more "
        "wait for one, at most 5 s, then 503.",
    )
    open_data_dir: Path | None = Field(
        None,
        description="Where `ioc export` writes the open-data files and the API serves them at /open-data/ "
        "to anyone; default <run_dir>/open-data.",
    )
    history_retention_days: dict[str, int] = Field(
        default_factory=lambda: {"1m": 30, "5m": 90, "15m": 365},
        description='Days the history keeps windows of each length, as JSON: {"1m": 30, …}; a length not '
        "named (1h, 1d) is kept for good. Alert and incident events are kept for good.",
    )
    transit_taps_retention_days: int = Field(
        400,
        ge=1,
        description="Days the history keeps fare taps (no card id: a rider token valid for one service day), "
        "which the transit KPIs count.",
    )
    reading_interval_seconds: dict[str, int] = Field(
        default_factory=lambda: {
            name: feed.reading_interval_seconds
            for name, feed in REGISTRY.items()
            if feed.reading_interval_seconds is not None
        },
        description="Seconds between a sensor's readings, per feed, as JSON: what the data completeness KPI "
        "expects; default each feed's own (transit taps come when riders do: not listed).",
    )

    # MQTT: an existing broker, or the local Mosquitto started by `ioc infra up`; `ioc bridge mqtt` reads it.
    mqtt_url: str | None = Field(
        None,
        description="Existing MQTT broker (mqtt://[user:password@]host:port, mqtts:// for TLS); "
        "when set, nothing is started.",
    )
    mqtt_port: int = Field(1883, description="Port of the local Mosquitto.")
    mqtt_tls: bool = Field(
        False, description="The local Mosquitto (mqtt_url unset) is reached over TLS (mqtts://)."
    )
    mqtt_username: str | None = Field(None, description="MQTT user, when mqtt_url names none.")
    mqtt_password: SecretStr | None = Field(None, description="MQTT password, when mqtt_url has none.")
    mqtt_ca_file: Path | None = Field(
        None,
        description="CA certificate(s) (PEM) the MQTT broker's TLS certificate is checked with; default "
        "tls_ca_file.",
    )
    tls_ca_file: Path | None = Field(
        None,
        description="CA certificate(s) (PEM) for every TLS connection to Kafka, Redis and MQTT unless the "
        "server's own *_ca_file is set; unset: the system's CAs.",
    )
    mqtt_topic_root: str = Field("ioc", description="The MQTT bridge reads <root>/<feed>/<sensor id>.")
    mqtt_client_id: str = Field(
        "ioc-bridge", description="MQTT client id of the bridge: its persistent session at the broker."
    )

    # Notifications: Prometheus Alertmanager, existing ones or the local one started by `ioc infra up`.
    alertmanager_urls: str | None = Field(
        None,
        description="Existing Alertmanagers (http://host:9093,… e.g. an HA pair); `ioc notify` sends every "
        "alert to each. When set, nothing is started.",
    )
    alertmanager_port: int = Field(
        9095,
        description="Port of the local Alertmanager (9093 is Kafka's controller, 9094 Alertmanager's "
        "cluster port, which the local one does not open).",
    )
    alertmanager_config: Path | None = Field(
        None,
        description="Routing configuration of the local Alertmanager; the shipped example "
        "deploy/alertmanager/alertmanager.yml when unset.",
    )
    console_url: str = Field(
        "http://127.0.0.1:8000/",
        description="Address of the operators' console as people reach it: notifications link to "
        "<console_url>#alert=<id>.",
    )
    notify_poll_seconds: float = Field(
        1.0, gt=0, description="How often `ioc notify` compares the live picture with what it has sent."
    )
    notify_resend_seconds: float = Field(
        60,
        gt=0,
        description="How often every open alert is sent again; well under Alertmanager's resolve_timeout "
        "(5 min), so an open alert never expires there.",
    )

    # Where the local infrastructure keeps jars (reused), data, logs and PID files.
    cache_dir: Path = Field(Path("~/.cache/ioc"), description="Downloaded Kafka jars, reused across runs.")
    run_dir: Path = Field(
        Path("~/.local/state/ioc"),
        description="Local broker data, logs, PID files and the worker's table data (faust/<worker id>).",
    )

    # API.
    api_host: str = Field("127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(8000, description="Port the API listens on.")
    api_keys: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated name:role:key entries (role:key also: named <role>-<6 hex digits of the "
        "key's SHA-256>); roles operator, integrator, admin. An operator key may be scoped to districts of "
        "the city registry, name:operator@dong-da+ba-dinh:key: it sees and acts on those districts only. "
        "The name is what the audit trail and the logs "
        "show (acknowledgedBy, createdBy, key=…), never the key.",
    )
    api_keys_file: Path | None = Field(
        None,
        description="A file of name:role:<SHA-256 of the key in hex> lines (# comments), so the server never "
        "holds the keys (the role scoped as in IOC_API_KEYS, operator@dong-da); with IOC_API_KEYS or "
        "instead of it. Read when the settings are.",
    )
    auth_failures_max: int = Field(
        10,
        ge=1,
        description="Wrong API keys one client address may send within auth_failures_window_seconds; "
        "beyond, its requests get 429 with Retry-After before any key is checked (per API process).",
    )
    auth_failures_window_seconds: float = Field(
        300, gt=0, description="The window of auth_failures_max, in seconds."
    )
    api_max_body_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="Largest body of every request but ingest (acknowledge, resolve, silences): 413 beyond, "
        "refused while it is read, before the key is checked.",
    )

    # Ingest API (POST /v1/ingest/{feed}, POST /v1/ngsi-ld/notify).
    ingest_max_body_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        description="Largest ingest body in bytes (refused while it is read, before the key is checked), "
        "also after gzip decoding; 413 beyond.",
    )
    ingest_max_items: int = Field(5000, ge=1, description="Most items in one ingest request; 413 beyond.")
    ingest_rate_per_key: float = Field(
        5000,
        gt=0,
        description="Events per second one API key may push, all API replicas together; 429 beyond.",
    )
    ingest_burst_per_key: int = Field(
        10_000, ge=1, description="Events a key may push at once above its rate (at least ingest_max_items)."
    )
    ingest_dedup_seconds: int = Field(
        86_400,
        ge=1,
        description="How long an event id or natural key is remembered; a repeat is a duplicate.",
    )
    ingest_kafka_timeout_seconds: float = Field(
        10, gt=0, description="How long an ingest request waits for Kafka's acknowledgement before a 503."
    )
    ingest_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After of a 503 when Kafka or Redis is unreachable."
    )

    # Operators' API (acknowledge and resolve alerts, silences).
    command_wait_seconds: float = Field(
        5,
        ge=0,
        description="How long an acknowledge or resolve request waits for the picture to show the change: "
        "200 with the alert when it does, else 202 with the command (it is in Kafka and will apply).",
    )
    command_kafka_timeout_seconds: float = Field(
        10, gt=0, description="How long an operator's command or silence waits for Kafka before a 503."
    )
    command_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After of a 503 when Kafka did not acknowledge a command or silence."
    )
    silence_max_duration_seconds: float = Field(
        30 * 86_400,
        gt=0,
        description="Longest silence an operator may create (30 days): a longer one is refused (422), so "
        "no silence outlives the memory of why it was made.",
    )

    # Sensors outside the registry (`unregistered:<id>`): anyone with an ingest key can make ids up.
    unregistered_sensors_max: int = Field(
        1000,
        ge=1,
        description="Unregistered sensors each feed keeps in the live picture; past it, the one written "
        "longest ago goes.",
    )
    unregistered_ttl_seconds: int = Field(
        86_400,
        ge=60,
        description="An unregistered sensor leaves the live picture this long after its last window.",
    )

    # The operators' live stream (GET /v1/stream).
    stream_history: int = Field(
        10_000,
        ge=1,
        description="Changes the Redis stream <prefix>:stream keeps for GET /v1/stream: a client that "
        "reconnects with an older Last-Event-ID gets a fresh snapshot (a reset) instead of what it missed.",
    )
    picture_max_age_seconds: float = Field(
        1.0,
        ge=0,
        description="GET /v1/picture: one computed picture serves every request of an API process for this "
        "long (a room of consoles costs one computation a second); 0 computes it per request.",
    )
    metrics_max_age_seconds: float = Field(
        5.0,
        ge=0,
        description="GET /metrics: one scrape's answer serves every scrape of an API process for this long "
        "(a pair of Prometheus servers, a dashboard's refreshes); 0 reads Kafka and Redis per scrape.",
    )
    readyz_max_age_seconds: float = Field(
        1.0,
        ge=0,
        description="GET /readyz: one probe's answer serves every probe of an API process for this long "
        "(load balancers and orchestrators probe often, from several places); 0 probes per request.",
    )
    stream_max_clients: int = Field(
        1_000,
        ge=1,
        description="GET /v1/stream clients one API process serves at once (each holds a Redis connection "
        "for its blocking read); beyond it a stream ends and the client reconnects.",
    )
    stream_max_per_key: int = Field(
        200,
        ge=1,
        description="GET /v1/stream clients one API key may hold open at once in one API process (a console "
        "holds one); 429 beyond, so a leaked or runaway key cannot take every stream. A room of consoles "
        "shares one operator key today: lower it once each operator has a key of their own.",
    )

    # City (its time zone comes with its registry file).
    city: str = Field("hanoi", description="City registry to load (ioc/city/<city>.json or a file path).")

    # Privacy: transit card ids are replaced by HMAC-SHA256(key, card id) before they reach Kafka.
    card_hmac_key: SecretStr | None = Field(
        None,
        description="Key of the HMAC-SHA256 that pseudonymises transit card ids: at least 32 random bytes "
        f"as {CARD_KEY_MIN_HEX}+ hexadecimal characters ({CARD_KEY_HOWTO}). No default: every process that "
        "sees card ids (api, bridge mqtt, simulate, dlq replay) refuses to start without it; ioc demo makes "
        "one per run.",
    )
    card_hmac_key_id: str = Field(
        "k1", description="Id of the card HMAC key, written beside every card hash so keys can rotate."
    )

    # Stream processing.
    windows: dict[str, list[str]] = Field(
        default_factory=lambda: {name: list(feed.windows) for name, feed in REGISTRY.items()},
        description='Event-time tumbling windows per feed, as JSON: {"air": ["1m", "5m", "1h"], …}.',
    )
    allowed_lateness_seconds: int = Field(
        300, ge=0, description="How long after its end a window still accepts late events."
    )
    future_tolerance_seconds: float = Field(
        DEFAULT_FUTURE_TOLERANCE_SECONDS,
        ge=0,
        description="How far an event time may be ahead of the clock that receives it (the edge's clock, "
        "the record's Kafka timestamp in the worker); beyond it the event is a dead letter (future).",
    )
    worker_id: str = Field("ioc", description="Faust application id; workers with one id share the work.")
    store: str = Field("memory://", description="Faust table store: memory:// or rocksdb://.")
    worker_session_timeout_seconds: float = Field(
        30, ge=6, description="How soon a silent worker is declared dead and its partitions move on."
    )
    worker_commit_interval_seconds: float = Field(
        2.8,
        gt=0,
        description="Seconds between a worker's offset commits (Faust's broker_commit_interval, whose "
        "default this is): at most this much work is read again after a crash, and consumer lag shows "
        "progress this late.",
    )
    rules: str = Field("hanoi", description="Alert rules: a packaged rules file's name or a YAML path.")

    # Isolation: replays and experiments beside the live system.
    namespace: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$",
        description="Run isolated under this name: it becomes the topic prefix, the Redis prefix and the "
        "worker id (consumer group), so a replay or an experiment never touches the live picture.",
    )

    @field_validator(
        "cache_dir",
        "run_dir",
        "alertmanager_config",
        "tls_ca_file",
        "kafka_ca_file",
        "redis_ca_file",
        "mqtt_ca_file",
    )
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _check_kafka_sasl(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_username and self.kafka_password
        ):
            raise ValueError(
                f"IOC_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs IOC_KAFKA_USERNAME and "
                "IOC_KAFKA_PASSWORD"
            )
        return self

    @model_validator(mode="after")
    def _apply_namespace(self) -> Settings:
        if self.namespace:
            self.topic_prefix = self.redis_prefix = self.worker_id = self.namespace
        return self

    @model_validator(mode="after")
    def _check_key_districts(self) -> Settings:
        # After the fields: the city (and so its districts) is known only now.
        keys = self.api_key_entries()
        if any(key.districts for key in keys):
            known = {district.id for district in load_city(self.city).districts}
            check_key_districts(keys, known, "IOC_API_KEYS and IOC_API_KEYS_FILE")
        return self

    @field_validator("windows")
    @classmethod
    def _check_windows(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(FEEDS))
        if unknown:
            raise ValueError(
                f"windows for unknown feed(s) {', '.join(unknown)}: feeds are {', '.join(FEEDS)}"
            )
        for labels in value.values():
            for label in labels:
                window_seconds(label)
        return value

    @field_validator("card_hmac_key", mode="before")
    @classmethod
    def _check_card_key(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None or (isinstance(value, str) and not value.strip()):
            return None  # unset: the processes that need it refuse to start (ioc.privacy.require_card_key)
        if not isinstance(value, str):
            raise ValueError("IOC_CARD_HMAC_KEY must be a string of hexadecimal characters")
        return check_card_key(value)

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: SecretStr) -> SecretStr:
        parse_api_keys(value.get_secret_value())
        return value

    @field_validator("api_keys_file")
    @classmethod
    def _check_keys_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        value = value.expanduser()
        try:
            text = value.read_text()
        except OSError as error:
            raise ValueError(f"IOC_API_KEYS_FILE {value} cannot be read: {error.strerror}") from None
        in_file = parse_api_keys_file(text, value)
        listed = info.data.get("api_keys")
        if isinstance(listed, SecretStr):
            _unique(parse_api_keys(listed.get_secret_value()) + in_file, "IOC_API_KEYS and IOC_API_KEYS_FILE")
        return value

    def in_namespace(self, name: str) -> Settings:
        """These settings, isolated under ``name`` (see ``namespace``)."""
        return type(self).model_validate(self.model_dump() | {"namespace": name})

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def kafka_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def redis_address(self) -> str:
        """The Redis URL without the credentials of redis_username/redis_password (the client factory,
        ``connectors.redis``, adds them)."""
        scheme = "rediss" if self.redis_tls else "redis"
        return self.redis_url or f"{scheme}://127.0.0.1:{self.redis_port}/0"

    @property
    def open_data_path(self) -> Path:
        return self.open_data_dir or self.run_dir / "open-data"

    @property
    def database_address(self) -> str:
        return self.database_url or f"postgresql://ioc@127.0.0.1:{self.postgres_port}/ioc"

    @property
    def mqtt_address(self) -> str:
        """The MQTT URL without the credentials of mqtt_username/mqtt_password (``ioc.infra.mosquitto``'s
        client factory adds them)."""
        scheme = "mqtts" if self.mqtt_tls else "mqtt"
        return self.mqtt_url or f"{scheme}://127.0.0.1:{self.mqtt_port}"

    def ca_file(self, server: Literal["kafka", "redis", "mqtt"]) -> Path | None:
        """The CA file TLS connections to ``server`` check its certificate with (None: the system's)."""
        own = {"kafka": self.kafka_ca_file, "redis": self.redis_ca_file, "mqtt": self.mqtt_ca_file}[server]
        return own or self.tls_ca_file

    @property
    def alertmanager_addresses(self) -> list[str]:
        """The Alertmanagers to notify: the listed ones, else the local one."""
        if self.alertmanager_urls:
            return [url.strip().rstrip("/") for url in self.alertmanager_urls.split(",") if url.strip()]
        return [f"http://127.0.0.1:{self.alertmanager_port}"]

    def api_key_entries(self) -> list[ApiKey]:
        """The keys of IOC_API_KEYS and IOC_API_KEYS_FILE (read now), as names, roles and digests."""
        keys = parse_api_keys(self.api_keys.get_secret_value())
        if self.api_keys_file is not None:
            keys += parse_api_keys_file(self.api_keys_file.read_text(), self.api_keys_file)
        return _unique(keys, "IOC_API_KEYS and IOC_API_KEYS_FILE")

    def topic(self, name: str) -> str:
        """Full topic name: ``topic("air.raw")`` → ``ioc.air.raw``."""
        return f"{self.topic_prefix}.{name}"

    def raw_topic(self, feed: str) -> str:
        return self.topic(f"{feed}.raw")

    def agg_topic(self, feed: str, window: str | None = None) -> str:
        """``<prefix>.<feed>.agg.<window>``; the feed's shortest window when none is named."""
        return self.topic(f"{feed}.agg.{window or self.windows_of(feed)[0].label}")

    def neighbours_topic(self, feed: str) -> str:
        """A feed's sensors' deviations, keyed by each sensor that counts them as a neighbour."""
        return self.topic(f"{feed}.neighbours")

    @property
    def anomalies_topic(self) -> str:
        return self.topic("anomalies")

    @property
    def alerts_topic(self) -> str:
        return self.topic("alerts")

    @property
    def alert_commands_topic(self) -> str:
        """Operators' acknowledge and resolve commands, keyed by the alert's entity."""
        return self.topic("alert-commands")

    @property
    def silences_topic(self) -> str:
        """Operators' silences, keyed by silence id; each is written to every partition."""
        return self.topic("silences")

    @property
    def alerts_by_district_topic(self) -> str:
        """The alert events again, keyed by district: the incidents stage groups a district's alerts."""
        return self.topic("alerts.by-district")

    @property
    def incidents_topic(self) -> str:
        return self.topic("incidents")

    @property
    def dlq_topic(self) -> str:
        return self.topic("dlq")

    def windows_of(self, feed: str) -> list[WindowSpec]:
        """The feed's windows, shortest first."""
        labels = self.windows.get(feed) or REGISTRY[feed].windows
        specs = {WindowSpec(window_seconds(label), self.allowed_lateness_seconds) for label in labels}
        return sorted(specs, key=lambda spec: spec.size_seconds)

    def redis_key(self, *parts: str) -> str:
        return ":".join((self.redis_prefix, *parts))
