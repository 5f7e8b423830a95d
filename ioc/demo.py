"""``ioc demo``: the whole pipeline on one machine, and a clean stop on Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from rich.console import Console

from ioc import infra
from ioc.settings import Role, Settings, unnamed_key_name

READY_TIMEOUT = 240
# The shipped recording (06:00–12:00 of a Hanoi morning, with its incidents), replayed to end now.
MORNING = Path(__file__).resolve().parents[1] / "examples" / "hanoi-morning.jsonl.gz"
MORNING_SPAN = timedelta(hours=6, minutes=1)


class ChildProcess:
    """An ``ioc`` subcommand in its own process group, logging to a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_file = log_dir / f"{name}.log"
        with self.log_file.open("ab") as log:
            # Own session: Ctrl-C reaches only the demo, which then stops children in order.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ioc", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def demo_keys(settings: Settings) -> str:
    """The configured keys, or fresh random ones for this demo (named demo-<role>)."""
    if configured := settings.api_keys.get_secret_value():
        return configured
    return ",".join(
        f"demo-{role}:{role}:{role[:3]}-{secrets.token_urlsafe(12)}"
        for role in ("operator", "integrator", "admin")
    )


def key_entries(keys: str) -> list[tuple[str, Role, str]]:
    """``(name, role, key)`` of each entry of an ``IOC_API_KEYS`` value (already validated)."""
    entries = []
    for entry in filter(None, (e.strip() for e in keys.split(","))):
        first, _, rest = entry.partition(":")
        if first in Role.__members__:
            entries.append((unnamed_key_name(first, rest), Role(first), rest))
        else:
            role, _, key = rest.partition(":")
            entries.append((first, Role(role), key))
    return entries


def demo_card_key(settings: Settings, console: Console) -> dict[str, str]:
    """The card HMAC key for the demo's children: the one set, else a random one for this run only (its
    card hashes mean nothing after the run). Says which, never the key."""
    if settings.card_hmac_key is not None:
        console.print("Card ids are pseudonymised with IOC_CARD_HMAC_KEY as set.")
        return {}
    console.print("Card ids are pseudonymised with a random IOC_CARD_HMAC_KEY made for this run.")
    return {"IOC_CARD_HMAC_KEY": secrets.token_hex(32)}


def run_demo(settings: Settings, console: Console, *, interval: float) -> None:
    def stop_on_sigterm(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    # A parent that ignored SIGINT (a background job, a service manager) must not make Ctrl-C a no-op.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    before = {s.name: s.state for s in infra.status(settings)}
    console.print(
        "[bold]Starting Kafka, Redis, Mosquitto, PostgreSQL and Alertmanager[/] (the first run fetches "
        "Kafka's jars from Maven Central)…"
    )
    statuses = infra.up(settings)
    started_infra = [s.name for s in statuses if before.get(s.name) == "stopped"]
    keys = demo_keys(settings)
    env = {**os.environ, "IOC_API_KEYS": keys, **demo_card_key(settings, console)}
    log_dir = settings.run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    base = f"http://{settings.api_host}:{settings.api_port}"
    operator_key = next(key for _, role, key in key_entries(keys) if role in (Role.operator, Role.admin))
    generated_keys = not settings.api_keys.get_secret_value()

    with ExitStack() as cleanup:
        if started_infra:
            cleanup.callback(lambda: infra.down(settings, only=started_infra))
        children = [
            ChildProcess("worker", ["worker"], env, log_dir),
            ChildProcess("api", ["api"], env, log_dir),
            ChildProcess("history", ["history"], env, log_dir),
            ChildProcess("notify", ["notify"], env, log_dir),
        ]
        mailbox = local_mailbox(settings)
        if mailbox is not None:  # the routing example's duty inboxes, for the local Alertmanager
            children.append(ChildProcess("mailbox", ["mailbox", "--directory", str(mailbox)], env, log_dir))
        replay_recent_past(env, log_dir, console)
        children.append(ChildProcess("simulator", ["simulate", "--interval", str(interval)], env, log_dir))
        for child in children:
            cleanup.callback(child.stop)
        try:
            _wait_for_picture(base, operator_key, children, console)
            console.print(f"\n[bold green]ioc is running.[/] Live picture: [link]{base}/v1/picture[/]")
            console.print(f"API docs: {base}/docs")
            if generated_keys:  # made for this run: shown so they can be used
                console.print("API keys made for this run (X-API-Key header):")
                for name, role, key in key_entries(keys):
                    console.print(f"  {name} ({role}): {key}")
                console.print(f"Try: curl -H 'X-API-Key: {operator_key}' {base}/v1/picture")
            else:  # the operator's own keys: named, never printed
                names = ", ".join(f"{name} ({role})" for name, role, _ in key_entries(keys))
                console.print(f"API keys in use (IOC_API_KEYS as set): {names}")
                console.print(f"Try: curl -H 'X-API-Key: <an operator key>' {base}/v1/picture")
            console.print(f"Alertmanager (alerts, silences): {', '.join(settings.alertmanager_addresses)}")
            if mailbox is not None:
                console.print(f"Notification emails: {mailbox}/new (one file per message)")
            console.print("Logs: " + ", ".join(str(c.log_file) for c in children))
            console.print("Press Ctrl-C to stop everything the demo started.")
            while all(c.process.poll() is None for c in children):
                time.sleep(1)
            dead = next(c for c in children if c.process.poll() is not None)
            console.print(f"[red]{dead.name} exited ({dead.process.returncode}); see {dead.log_file}[/]")
        except KeyboardInterrupt:
            console.print("\nStopping…")
    console.print("Stopped.")


def replay_recent_past(env: dict[str, str], log_dir: Path, console: Console) -> None:
    """The shipped recording (six hours of a Hanoi morning with its incidents), moved to end now: the
    console, the history and the notifications have something to show at once, not after the rules'
    hold times (up to an hour) of live data. Skipped when the recording is not there (an installed
    package)."""
    if not MORNING.exists():
        return
    first = datetime.now(UTC) - MORNING_SPAN
    status = console.status("replaying the last six hours (the shipped recording, moved to now)…")
    with status, (log_dir / "replay.log").open("wb") as out:
        result = subprocess.run(
            [sys.executable, "-m", "ioc", "replay", str(MORNING), "--shift-to", first.isoformat()],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    if result.returncode != 0:
        console.print(f"[yellow]the replay of the recent past failed; see {log_dir / 'replay.log'}[/]")


def local_mailbox(settings: Settings) -> Path | None:
    """Where the demo's mailbox keeps the local Alertmanager's emails; None when Alertmanager is
    someone else's or aiosmtpd (dev extras) is missing."""
    if settings.alertmanager_urls:
        return None
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        return None
    from ioc.cli.mailbox import mailbox_dir

    return mailbox_dir(settings)


def _wait_for_picture(base: str, key: str, children: list[ChildProcess], console: Console) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    with console.status("waiting for the first live readings…"):
        while time.monotonic() < deadline:
            for child in children:
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited early; see {child.log_file}")
            try:
                body = httpx.get(f"{base}/v1/picture", headers={"X-API-Key": key}, timeout=2).json()
                if any(feed["sensors"] for feed in body.get("feeds", {}).values()):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
    raise RuntimeError(
        f"no live readings after {READY_TIMEOUT} s; see the logs in {children[0].log_file.parent}"
    )
