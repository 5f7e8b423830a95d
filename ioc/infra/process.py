"""Detached processes with PID files, and ``LocalService``: the life cycle of the local Kafka and Redis."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ioc.settings import Settings

log = logging.getLogger("ioc.infra")


@dataclass(frozen=True)
class ServiceStatus:
    name: str  # "kafka" | "redis" | "mosquitto"
    state: str  # "running" | "stopped" | "external"
    address: str
    pid: int | None
    log_file: Path | None
    version: str | None


class InfraError(RuntimeError):
    """A local service could not be installed, started or stopped; the message says why."""


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def _is_zombie(pid: int) -> bool:
    # A dead child that nobody reaped yet still has a /proc entry; it is not running.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def _reap(pid: int) -> None:
    # Only succeeds when we are the parent (tests, or stop() right after start()).
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_running(pid: int | None, marker: str) -> bool:
    """True when ``pid`` is alive and its command line contains ``marker`` (guards against PID reuse)."""
    if pid is None or pid <= 0:
        return False
    _reap(pid)
    cmdline = _cmdline(pid)
    return cmdline is not None and marker in cmdline and not _is_zombie(pid)


def running_pid(pid_file: Path, marker: str) -> int | None:
    """The PID recorded in ``pid_file`` if that process still runs; a stale file counts as stopped."""
    pid = read_pid(pid_file)
    return pid if is_running(pid, marker) else None


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    # Binding (not connecting) is what the service will do, so it is the honest test.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def require_free_port(port: int, what: str, env_var: str) -> None:
    if port_in_use(port):
        raise InfraError(
            f"port {port} ({what}) is already in use by another process; stop it or set {env_var} "
            "to a free port"
        )


def find_binary(name: str) -> str | None:
    """``name`` on PATH, or in /usr/sbin and /sbin (daemons live there; a normal user's PATH lacks them)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def ensure_debian_package(binary: str, package: str, instead: str) -> str:
    """Path of ``binary``; installs Debian's ``package`` with apt-get when missing and we are root.

    ``instead`` completes "install it … or <instead>" in the error a normal user gets.
    """
    path = find_binary(binary)
    if path:
        return path
    if os.geteuid() != 0:
        raise InfraError(
            f"{binary} is not installed; install it (e.g. `sudo apt-get install -y {package}`) or {instead}"
        )
    log.info("installing %s with apt-get…", package)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", package]):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            lines = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
            raise InfraError(f"`{' '.join(argv)}` failed:\n{lines}")
    path = find_binary(binary)
    if path is None:
        raise InfraError(f"apt-get installed {package} but {binary} is not on PATH")
    return path


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def spawn_detached(
    argv: Sequence[str], pid_file: Path, output: Path, cwd: Path, user: str | None = None
) -> int:
    """Start ``argv`` in its own session so it outlives the caller (as ``user``, when given: we are root);
    record its PID."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            # The user is switched in the child before its one exec: a wrapper that execs again (setpriv)
            # leaves a moment with an empty /proc/<pid>/cmdline, which the PID check reads as "exited".
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    # Popen returns mid-exec: /proc/<pid>/cmdline can still be empty for a moment, and the
    # PID-reuse check reads it, so wait until it is filled in (or the process already died).
    deadline = time.monotonic() + 5
    while not _cmdline(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def terminate(pid_file: Path, marker: str, timeout: float) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; return once the process is gone; drop the PID file."""
    pid = running_pid(pid_file, marker)
    if pid is not None:
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(pid, marker, timeout):
            _signal(pid, signal.SIGKILL)
            if not _wait_gone(pid, marker, 10):
                raise InfraError(f"process {pid} survived SIGKILL")
    pid_file.unlink(missing_ok=True)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pid: int, marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_running(pid, marker):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def wait_until(
    probe: Callable[[], bool],
    timeout: float,
    what: str,
    check: Callable[[], None] | None = None,
    interval: float = 0.5,
) -> None:
    """Call ``probe`` until it returns True; ``check`` may raise to give up early (e.g. the process died)."""
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        if probe():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} was not ready after {timeout:.0f} s")
        time.sleep(interval)


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail(path: Path, lines: int = 20, since: int = 0) -> str:
    """The last ``lines`` lines of ``path``, ignoring the first ``since`` bytes (an earlier run's)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(since, fh.tell() - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class LocalService:
    """A process this run_dir starts under ``run_dir/<name>``; subclasses say how to launch and probe it.

    A subclass sets the class attributes below, and in ``__init__`` (after calling this one): address,
    external_address, version, marker, log_file, output_files (the first gets stdout) and ports
    ((port, what, env var) for each port it listens on). It implements ``answers`` and ``_launch``.
    """

    name: str  # "kafka" | "redis": its directory under run_dir and its PID file
    title: str  # "Kafka ready in …"
    what: str  # "stopping the Kafka broker…"
    waiting: str | None = None  # logged before waiting for the first answer
    not_ready: str  # the timeout error, formatted with address, timeout and log_file
    start_timeout: float
    probe_interval = 0.5
    address: str
    external_address: str | None
    version: str | None
    marker: str  # what the process's command line contains (guards against PID reuse)
    log_file: Path
    output_files: tuple[Path, ...]
    ports: list[tuple[int, str, str]]

    def __init__(self, settings: Settings):
        self.settings = settings
        self.home = (settings.run_dir / self.name).absolute()
        self.pid_file = self.home / f"{self.name}.pid"
        self._log_offsets: dict[Path, int] = {}

    def answers(self) -> bool:
        """One readiness probe."""
        raise NotImplementedError

    def _launch(self) -> None:
        raise NotImplementedError

    @property
    def external(self) -> bool:
        return bool(self.external_address)

    def pid(self) -> int | None:
        return running_pid(self.pid_file, self.marker)

    def status(self) -> ServiceStatus:
        if self.external:
            return ServiceStatus(self.name, "external", str(self.external_address), None, None, None)
        pid = self.pid()
        return ServiceStatus(
            name=self.name,
            state="running" if pid else "stopped",
            address=self.address,
            pid=pid,
            log_file=self.log_file if pid or self.log_file.exists() else None,
            version=self.version,
        )

    def start(self, timeout: float | None = None) -> ServiceStatus:
        """Start the service unless it runs (or is external); return once it answers."""
        if self.external:
            return self.status()
        timeout = self.start_timeout if timeout is None else timeout
        started = time.monotonic()
        if self.pid() is None:
            self._launch()
        else:
            log.info("%s already running (PID %s)", self.title, self.pid())
        # Also for a service already running: it may have been started a moment ago by someone else.
        if self.waiting:
            log.info(self.waiting)
        try:
            wait_until(self.answers, timeout, self.what, self._check_alive, interval=self.probe_interval)
        except TimeoutError:
            message = self.not_ready.format(address=self.address, timeout=timeout, log_file=self.log_file)
            raise TimeoutError(message) from None
        log.info("%s ready in %.1f s", self.title, time.monotonic() - started)
        return self.status()

    def check_ports(self) -> None:
        """Fail with the port's name when something else listens where the service would."""
        if self.external or self.pid():
            return
        for port, what, env_var in self.ports:
            require_free_port(port, what, env_var)

    def stop(self, timeout: float = 30) -> None:
        """Stop the process this run_dir started (clean shutdown, SIGKILL after ``timeout``)."""
        if self.external:
            return
        if self.pid():
            log.info("stopping %s…", self.what)
        terminate(self.pid_file, self.marker, timeout)

    def _spawn(self, argv: list[str], user: str | None = None) -> None:
        # Logs are appended across runs; a startup failure should show this run's lines only.
        self._log_offsets = {path: file_size(path) for path in self.output_files}
        spawn_detached(argv, self.pid_file, self.output_files[0], self.home, user)

    def _check_alive(self) -> None:
        if self.pid() is None:
            raise InfraError(f"{self.what} exited during startup:\n{self._recent_output()}")

    def _recent_output(self) -> str:
        parts = []
        for path in self.output_files:
            text = tail(path, 20, since=self._log_offsets.get(path, 0))
            if text.strip():
                parts.append(f"--- {path} ---\n{text}" if len(self.output_files) > 1 else text)
        return "\n".join(parts) or "(no log output)"
