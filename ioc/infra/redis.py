"""A throwaway Redis (no persistence) run from Debian's redis-server, under ``settings.run_dir/redis``."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from functools import cached_property

import redis

from ioc.infra.process import (
    LocalService,
    ensure_debian_package,
    wait_until,
)
from ioc.settings import Settings, mask_password

log = logging.getLogger("ioc.infra")

# Redis rewrites its process title to "redis-server 127.0.0.1:<port>", so our own arguments are gone
# from /proc/<pid>/cmdline; the binary name is what is left to recognise it by.
MARKER = "redis-server"


def redis_answers(url: str, timeout: float = 2.0) -> bool:
    """One readiness probe: PING succeeds."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, protocol=2)
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
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.settings.redis_port}/0"

    def answers(self) -> bool:
        """Redis answers PING."""
        return redis_answers(self.url)

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
            str(self.settings.redis_port),
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
        self._spawn(argv)
