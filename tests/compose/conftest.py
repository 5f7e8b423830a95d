"""The compose tier's fixtures: a container engine, the images and a running docker-compose.yml.

On a machine without them (CI's fresh one, as root) Debian's ``docker.io``, ``docker-compose`` and
``debootstrap`` are installed with apt. An engine that already answers (``DOCKER_HOST``, the system's
socket, or one this tier started before) is used as it is; otherwise ``dockerd`` is started on a socket
of its own (``/run/ioc-docker.sock``, not the system's: the other tiers' fixtures take testcontainers
whenever the system's socket answers) and stopped at the end. The images come from ``make images``'
script (cached: the base and the layers are kept for the next run). The stack runs under a project name
of its own with fresh secrets and free ports on 127.0.0.1, with two workers; ``down -v`` removes its
containers, network and volumes whatever happened.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from ioc.infra.process import ensure_debian_package
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SOCKET = "/run/ioc-docker.sock"
SERVICES = {
    "kafka": 1,
    "redis": 1,
    "mosquitto": 1,
    "postgres": 1,
    "alertmanager": 1,
    "worker": 2,
    "api": 1,
    "bridge": 1,
    "history": 1,
    "notify": 1,
}
KEYS = {role: secrets.token_hex(16) for role in ("operator", "integrator", "admin")}


def report(config: pytest.Config, line: str) -> None:
    """A figure of the tier, on the terminal even while output is captured."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture and reporter:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\ncompose tier: {line}")
    else:
        print(f"compose tier: {line}")


def phase(config: pytest.Config, name: str, started: float) -> None:
    report(config, f"{name} in {time.monotonic() - started:.0f} s")


def _answers(base_url: str) -> bool:
    try:
        return bool(docker.DockerClient(base_url=base_url, timeout=5).ping())
    except Exception:  # no socket, refused, not an engine: all mean "not this one"
        return False


@pytest.fixture(scope="package")
def docker_host(pytestconfig: pytest.Config) -> Iterator[str]:
    started = time.monotonic()
    for binary, package in (
        ("dockerd", "docker.io"),
        ("docker-compose", "docker-compose"),
        ("debootstrap", "debootstrap"),
    ):
        ensure_debian_package(binary, package, "run this tier where Docker can be installed")
    candidates = [os.environ["DOCKER_HOST"]] if os.environ.get("DOCKER_HOST") else []
    candidates += ["unix:///var/run/docker.sock", f"unix://{SOCKET}"]
    for candidate in candidates:
        if _answers(candidate):
            phase(pytestconfig, f"engine at {candidate} (already running)", started)
            yield candidate
            return
    log = Path(tempfile.gettempdir()) / "ioc-dockerd.log"
    with log.open("ab") as out:
        dockerd = subprocess.Popen(
            ["dockerd", "-H", f"unix://{SOCKET}", "--pidfile", "/run/ioc-docker.pid"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"unix://{SOCKET}"):
            if dockerd.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not answer within 60 s (status {dockerd.poll()}); see {log}")
            time.sleep(0.5)
        phase(pytestconfig, "packages and dockerd", started)
        yield f"unix://{SOCKET}"
    finally:
        dockerd.terminate()
        try:
            dockerd.wait(timeout=60)
        except subprocess.TimeoutExpired:
            dockerd.kill()
            dockerd.wait(timeout=10)


def _image_tag() -> str:
    import tomllib

    return "ioc:" + tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="package")
def image(pytestconfig: pytest.Config, docker_host: str) -> str:
    started, tag = time.monotonic(), _image_tag()
    result = subprocess.run(
        [str(ROOT / "deploy/docker/build-images.sh")],
        env={**os.environ, "DOCKER_HOST": docker_host, "IOC_IMAGE": tag},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, f"make images failed:\n{(result.stdout + result.stderr)[-4000:]}"
    phase(pytestconfig, f"images ({tag})", started)
    return tag


@dataclass
class Stack:
    """One docker-compose project: the compose command, its containers and its published ports."""

    project: str
    env: dict[str, str]
    engine: docker.DockerClient = field(repr=False)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['IOC_API_PUBLISH_PORT']}"

    @property
    def mqtt_port(self) -> int:
        return int(self.env["IOC_MQTT_PUBLISH_PORT"])

    def compose(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None):
        argv = ["docker-compose", "--project-name", self.project, "--file", str(COMPOSE_FILE), *args]
        return subprocess.run(argv, env=env or self.env, capture_output=True, text=True, timeout=timeout)

    def up(self) -> None:
        result = self.compose("up", "--detach", "--no-build", "--scale", "worker=2")
        assert result.returncode == 0, result.stdout + result.stderr

    def containers(self) -> list[Container]:
        label = f"com.docker.compose.project={self.project}"
        return self.engine.containers.list(all=True, filters={"label": label})

    def service(self, name: str) -> list[Container]:
        return [c for c in self.containers() if c.labels["com.docker.compose.service"] == name]

    def python(self, service: str, script: str) -> object:
        """Run ``script`` with the image's Python in the service's (first) container; its JSON output."""
        [container, *_] = self.service(service)
        code, output = container.exec_run(["python", "-c", script], demux=True)
        stdout, stderr = (part.decode() if part else "" for part in output)
        assert code == 0, stderr
        return json.loads(stdout)

    def unhealthy(self) -> dict[str, str]:
        """Each container not (yet) healthy: its state, and the last health check's output."""
        out = {}
        for container in self.containers():
            state = container.attrs["State"]
            health = state.get("Health") or {}
            if health.get("Status") != "healthy":
                last = (health.get("Log") or [{}])[-1].get("Output", "").strip()[-300:]
                out[container.name] = f"{state['Status']}/{health.get('Status')}: {last}"
        return out

    def diagnosis(self, tail: int = 30) -> str:
        """The end of every ioc process's log, for a failure's message."""
        ioc = {"worker", "api", "bridge", "history", "notify"}
        return "".join(
            f"\n--- {c.name} (restarts: {c.attrs['RestartCount']})\n"
            + c.logs(tail=tail).decode(errors="replace")
            for c in self.containers()
            if c.labels["com.docker.compose.service"] in ioc
        )

    def restarts(self) -> dict[str, int]:
        """Containers Docker restarted (their process exited), with how often."""
        return {c.name: c.attrs["RestartCount"] for c in self.containers() if c.attrs["RestartCount"]}

    def wait_healthy(self, timeout: float = 300) -> float:
        started = time.monotonic()
        while True:
            counts = {}
            for container in self.containers():
                service = container.labels["com.docker.compose.service"]
                counts[service] = counts.get(service, 0) + 1
            waiting = self.unhealthy()
            if counts == SERVICES and not waiting:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                logs = {
                    c.name: c.logs(tail=40).decode(errors="replace")
                    for c in self.containers()
                    if c.name in waiting
                }
                pytest.fail(f"not healthy after {timeout:.0f} s: {counts} {waiting}\n{logs}")
            time.sleep(2)


def stack_env(docker_host: str, image: str) -> dict[str, str]:
    """The operator's environment: fresh secrets, the image, free ports on 127.0.0.1."""
    api_keys = ",".join(f"{role}:{key}" for role, key in KEYS.items())
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("IOC_")},
        "DOCKER_HOST": docker_host,
        "IOC_IMAGE": image,
        "IOC_API_KEYS": api_keys,
        "IOC_CARD_HMAC_KEY": secrets.token_hex(32),
        "IOC_REDIS_PASSWORD": secrets.token_hex(16),
        "IOC_MQTT_PASSWORD": secrets.token_hex(16),
        "IOC_POSTGRES_PASSWORD": secrets.token_hex(16),
        "IOC_API_PUBLISH_PORT": str(free_port()),
        "IOC_MQTT_PUBLISH_PORT": str(free_port()),
    }


@pytest.fixture(scope="package")
def stack(pytestconfig: pytest.Config, docker_host: str, image: str) -> Iterator[Stack]:
    stack = Stack(
        f"ioctest{uuid.uuid4().hex[:8]}",
        stack_env(docker_host, image),
        docker.DockerClient(base_url=docker_host, timeout=60),
    )
    started = time.monotonic()
    try:
        stack.up()
        stack.wait_healthy()
        phase(pytestconfig, "up, every service healthy", started)
        yield stack
    finally:
        started = time.monotonic()
        result = stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "10")
        for container in stack.containers():  # anything `down` left, say after a failed `up`
            with suppress(docker.errors.APIError):
                container.remove(force=True, v=True)
        stack.engine.close()
        phase(pytestconfig, "down --volumes", started)
        assert result.returncode == 0, result.stdout + result.stderr
