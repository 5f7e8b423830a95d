"""A throwaway Redis (no persistence) run from Debian's redis-server, under ``settings.run_dir/redis``."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from functools import cached_property
from pathlib import Path
from typing import Any

import redis

from connectors.redis_client import redis_options
from ioc.infra import secure
from ioc.infra.process import (
    InfraError,
    LocalService,
    ensure_debian_package,
    wait_until,
)
from ioc.settings import Settings, mask_password

log = logging.getLogger("ioc.infra")

# Redis rewrites its process title to "redis-server 127.0.0.1:<port>", so our own arguments are gone
# from /proc/<pid>/cmdline; the binary name is what is left to recognise it by.
MARKER = "redis-server"


def redis_answers(url: str, timeout: float = 2.0, **options: Any) -> bool:
    """One readiness probe: PING succeeds (``options``: credentials and TLS, ``redis_options``)."""
    client = redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, protocol=2, **options
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def wait_for_redis(url: str, timeout: float) -> None:
    """Block until Redis at ``url`` answers PING; TimeoutError otherwise."""
    try:
        wait_until(lambda: redis_answers(url), timeout, f"Redis at {url}", interval=0.2)
    except TimeoutError:
        raise TimeoutError(f"Redis at {url} did not answer PING within {timeout:.0f} s") from None


class LocalRedis(LocalService):
    name = "redis"
    title = what = "Redis"
    not_ready = "Redis on {address} did not answer PING within {timeout:.0f} s"
    start_timeout = 30
    probe_interval = 0.2
    marker = MARKER

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.external_address = mask_password(settings.redis_url) if settings.redis_url else None
        self.address = self.url
        self.log_file = self.home / "redis.log"
        self.output_files = (self.log_file,)
        self.ports = [(settings.redis_port, "Redis", "IOC_REDIS_PORT")]

    @property
    def secure(self) -> bool:
        """TLS only and an ACL user (``ioc infra up --secure``): what the settings' clients expect."""
        return self.settings.redis_tls

    @property
    def url(self) -> str:
        scheme = "rediss" if self.secure else "redis"
        return f"{scheme}://127.0.0.1:{self.settings.redis_port}/0"

    def answers(self) -> bool:
        """Redis answers PING (as the settings' clients connect)."""
        local = self.settings.model_copy(update={"redis_url": None})  # this server, as clients reach it
        return redis_answers(self.url, **redis_options(local))

    @cached_property
    def version(self) -> str | None:
        binary = shutil.which("redis-server")
        if binary is None:
            return None
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        match = re.search(r"v=(\S+)", out)
        return match.group(1) if match else None

    # --- install ------------------------------------------------------------------------------------

    def ensure_installed(self) -> str:
        """Path of redis-server; installs Debian's package when missing and we are root."""
        path = ensure_debian_package(
            "redis-server", "redis-server", "set IOC_REDIS_URL to use an existing Redis"
        )
        self.__dict__.pop("version", None)  # a cached "not installed" answer may now be wrong
        return path

    def _launch(self) -> None:
        self.check_ports()
        binary = self.ensure_installed()
        self.home.mkdir(parents=True, exist_ok=True)
        log.info("starting Redis on %s…", self.url)
        argv = [
            binary,
            "--port",
            "0" if self.secure else str(self.settings.redis_port),
            "--bind",
            "127.0.0.1",
            # A dev cache: nothing is written to disk, a restart starts empty.
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.home),
            "--logfile",
            str(self.log_file),
            "--daemonize",
            "no",  # we detach it ourselves and keep the PID
        ]
        if self.secure:
            argv[1:1] = [str(self._secure_config())]  # the config file comes first
        self._spawn(argv)

    def _secure_config(self) -> Path:
        """A config file (mode 0600: it holds the ACL password) for TLS only and one ACL user, the
        default user off, so no connection without TLS nor without the password gets anywhere."""
        settings = self.settings
        if not settings.redis_username or settings.redis_password is None:
            raise InfraError("a secured local Redis needs IOC_REDIS_USERNAME and IOC_REDIS_PASSWORD")
        secure.ensure_certificates(settings)
        cert, key = secure.server_files(settings)
        password = settings.redis_password.get_secret_value()
        lines = [
            "# Generated by ioc infra up --secure; rewritten on every start.",
            "port 0",  # no plaintext port at all
            f"tls-port {settings.redis_port}",
            f"tls-cert-file {cert}",
            f"tls-key-file {key}",
            f"tls-ca-cert-file {secure.ca_file(settings)}",
            "tls-auth-clients no",  # clients prove themselves with the ACL password, not a certificate
            f"user {settings.redis_username} on >{password} ~* &* +@all",
            "user default off",
        ]
        config = self.home / "redis-secure.conf"
        config.touch(mode=0o600)
        config.chmod(0o600)
        config.write_text("\n".join(lines) + "\n")
        return config
