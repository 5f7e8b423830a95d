"""The image installs deploy/docker/requirements.lock: every runtime dependency of pyproject.toml is in it,
at exactly one version its specifier allows. A dependency added or narrowed without ``make lock`` fails here,
not in a container next month."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "deploy/docker/requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"not an exact pin: {line!r}"
            assert canonicalize_name(name) not in pins, f"pinned twice: {name}"
            pins[canonicalize_name(name)] = version
    return pins


def test_every_runtime_dependency_is_locked_at_a_version_it_allows() -> None:
    pins = locked()
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{requirement.name}=={pins[name]} is outside {requirement.specifier}: run make lock"
        )
        for extra in requirement.extras:  # psycopg[binary] brings psycopg-binary
            assert canonicalize_name(f"{requirement.name}-{extra}") in pins, (
                f"{text}: its extra is not locked"
            )


def test_the_image_installs_the_lock_and_nothing_resolves_anew() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --quiet -r /build/requirements.lock" in dockerfile
    assert "--no-deps /build/src" in dockerfile and "pip check" in dockerfile
    assert "!deploy/docker/requirements.lock" in (ROOT / ".dockerignore").read_text().splitlines()
