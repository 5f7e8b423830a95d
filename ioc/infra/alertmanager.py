"""A local Prometheus Alertmanager (Debian's ``prometheus-alertmanager``) on 127.0.0.1, under
``settings.run_dir/alertmanager``: its silences and notification log live there, so a restart keeps them.

It routes with ``IOC_ALERTMANAGER_CONFIG``, the shipped example ``deploy/alertmanager/alertmanager.yml``
by default. Its gossip (cluster) port is closed: one node, and nothing on 9094. Set
``IOC_ALERTMANAGER_URLS`` to use existing Alertmanagers instead; then nothing is started.
"""

from __future__ import annotations

import logging
import re
import subprocess
from functools import cached_property
from pathlib import Path

import httpx

from ioc.infra.process import LocalService, ensure_debian_package, find_binary
from ioc.settings import Settings, mask_password

log = logging.getLogger("ioc.infra")

BINARY = "prometheus-alertmanager"
EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"


def alertmanager_answers(url: str, timeout: float = 2.0) -> bool:
    """One readiness probe: ``/-/ready`` answers 200 (the configuration is loaded)."""
    try:
        return httpx.get(f"{url.rstrip('/')}/-/ready", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


class LocalAlertmanager(LocalService):
    name = "alertmanager"
    title = what = "Alertmanager"
    not_ready = "Alertmanager on {address} was not ready within {timeout:.0f} s (log: {log_file})"
    start_timeout = 30
    probe_interval = 0.2

    def __init__(self, settings: Settings):
        super().__init__(settings)
        urls = settings.alertmanager_urls
        # Each URL may carry basic-auth credentials: shown with the password masked.
        shown = ",".join(url.strip() for url in urls.split(",")) if urls else None
        self.external_address = mask_password(shown) if shown else None
        self.address = self.url
        self.config = (settings.alertmanager_config or EXAMPLE_CONFIG).absolute()
        self.data_dir = self.home / "data"
        # The data path is unique per run_dir, so two run_dirs never claim each other's Alertmanager.
        self.marker = str(self.data_dir)
        self.log_file = self.home / "alertmanager.log"
        self.output_files = (self.log_file,)
        self.ports = [(settings.alertmanager_port, "Alertmanager", "IOC_ALERTMANAGER_PORT")]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.alertmanager_port}"

    def answers(self) -> bool:
        return alertmanager_answers(self.url)

    @cached_property
    def version(self) -> str | None:
        binary = find_binary(BINARY)
        if binary is None:
            return None
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        match = re.search(r"version (\S+)", result.stdout + result.stderr)
        return match.group(1) if match else None

    def ensure_installed(self) -> str:
        """Path of prometheus-alertmanager; installs Debian's package when missing and we are root."""
        path = ensure_debian_package(
            BINARY, "prometheus-alertmanager", "set IOC_ALERTMANAGER_URLS to use an existing Alertmanager"
        )
        self.__dict__.pop("version", None)  # a cached "not installed" answer may now be wrong
        return path

    def _launch(self) -> None:
        self.check_ports()
        binary = self.ensure_installed()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log.info("starting Alertmanager on %s with %s…", self.url, self.config)
        self._spawn(
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.settings.alertmanager_port}",
                f"--web.external-url={self.url}",
                "--cluster.listen-address=",  # one node: no gossip port (9094 by default)
                "--log.level=info",
            ]
        )
