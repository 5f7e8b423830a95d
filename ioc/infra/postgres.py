"""A local PostgreSQL (Debian's ``postgresql``) for the history store, under ``settings.run_dir/postgres``.

Its own cluster (``initdb`` once, then ``postgres`` in the foreground, detached by us), listening on
127.0.0.1 only, with the superuser ``ioc`` trusted from there and a database ``ioc``: a developer's
store, as throwaway as the local Kafka. PostgreSQL refuses to run as root, so as root the cluster is
owned and run by the system user ``postgres`` that Debian's package creates.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import re
import stat
import subprocess
from functools import cached_property
from pathlib import Path

import psycopg

from ioc.infra.process import InfraError, LocalService, ensure_debian_package, wait_until
from ioc.settings import Settings, mask_password

log = logging.getLogger("ioc.infra")

SUPERUSER = DATABASE = "ioc"
SYSTEM_USER = "postgres"  # who runs the cluster when we are root


def postgres_answers(url: str, timeout: float = 2.0) -> bool:
    """One readiness probe: a connection opens and answers a query."""
    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout))) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def wait_for_postgres(url: str, timeout: float) -> None:
    try:
        wait_until(lambda: postgres_answers(url), timeout, "PostgreSQL", interval=0.3)
    except TimeoutError:
        raise TimeoutError(f"PostgreSQL did not answer within {timeout:.0f} s") from None


class LocalPostgres(LocalService):
    name = "postgres"
    title = what = "PostgreSQL"
    not_ready = "PostgreSQL on {address} did not answer within {timeout:.0f} s; see {log_file}"
    start_timeout = 60
    probe_interval = 0.3

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.external_address = mask_password(settings.database_url) if settings.database_url else None
        self.data = self.home / "data"
        self.log_file = self.home / "postgres.log"
        self.output_files = (self.log_file,)
        self.ports = [(settings.postgres_port, "PostgreSQL", "IOC_POSTGRES_PORT")]
        self.marker = str(self.data)  # in the server's command line: this run_dir's cluster, no other
        self.address = self.url

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.settings.postgres_port}/{DATABASE}"

    @property
    def maintenance_url(self) -> str:
        """The server's own database, there before ``ioc``'s is made."""
        return self.url.rsplit("/", 1)[0] + "/postgres"

    def answers(self) -> bool:
        return postgres_answers(self.maintenance_url)

    @cached_property
    def version(self) -> str | None:
        binaries = self._binaries()
        if binaries is None:
            return None
        out = subprocess.run([binaries / "postgres", "--version"], capture_output=True, text=True, timeout=10)
        match = re.search(r"(\d+(\.\d+)*)", out.stdout)
        return match.group(1) if match else None

    # --- install ------------------------------------------------------------------------------------

    @staticmethod
    def _binaries() -> Path | None:
        """Debian keeps the server's binaries per major version, off PATH; the newest installed."""
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_major, reverse=True)
        return Path(found[0]).parent if found else None

    def ensure_installed(self) -> Path:
        """The server's binary directory; installs Debian's package when missing and we are root."""
        ensure_debian_package("pg_ctlcluster", "postgresql", "set IOC_DATABASE_URL to use an existing server")
        binaries = self._binaries()
        if binaries is None:
            raise InfraError("Debian's postgresql is installed but no /usr/lib/postgresql/*/bin/postgres")
        self.__dict__.pop("version", None)
        return binaries

    @staticmethod
    def _owner() -> str | None:
        """Who runs the cluster: ourselves, or ``postgres`` when we are root."""
        return SYSTEM_USER if os.geteuid() == 0 else None

    def _launch(self) -> None:
        self.check_ports()
        binaries = self.ensure_installed()
        self.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.home, owner.pw_uid, owner.pw_gid)
            _let_others_through(self.home.parent)
            for path in (self.log_file,):
                path.touch()
                os.chown(path, owner.pw_uid, owner.pw_gid)
        if not (self.data / "PG_VERSION").exists():
            log.info("creating a PostgreSQL cluster in %s…", self.data)
            initdb = [str(binaries / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8"]
            initdb += ["--auth=trust", "--no-instructions", "--locale=C.UTF-8"]
            owner = self._owner()
            result = subprocess.run(
                initdb, capture_output=True, text=True, timeout=120, user=owner, group=owner, cwd=self.home
            )
            if result.returncode != 0:
                raise InfraError(f"initdb failed:\n{(result.stdout + result.stderr)[-2000:]}")
        log.info("starting PostgreSQL on %s…", self.url)
        server = [str(binaries / "postgres"), "-D", str(self.data), "-h", "127.0.0.1"]
        server += ["-p", str(self.settings.postgres_port), "-k", str(self.home)]
        self._spawn(server, user=self._owner())

    def start(self, timeout: float | None = None):  # type: ignore[no-untyped-def]
        status = super().start(timeout)
        if not self.external:
            self._create_database()
        return status

    def _create_database(self) -> None:
        with psycopg.connect(self.maintenance_url, autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{DATABASE}"')


def _major(path: str) -> int:
    match = re.search(r"/postgresql/(\d+)/", path)
    return int(match.group(1)) if match else 0


def _let_others_through(directory: Path) -> None:
    """Search permission (o+x: pass through, not list) on ``directory`` and its parents, so the cluster's
    owner reaches its directory under root's run_dir (root's home and pytest's temporary directories are
    closed to others)."""
    for path in (directory, *directory.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("letting the user %s pass through %s (o+x) to its cluster", SYSTEM_USER, path)
            path.chmod(mode | stat.S_IXOTH)
