"""The processes that pseudonymise card ids refuse to start without a proper IOC_CARD_HMAC_KEY: a real
process, its exit status and its one-line message, and never the value in its output. They exit before
connecting to anything, so no servers are needed."""

import os
import subprocess
import sys

import pytest

SHORT = "not-a-secret-key-42"
NOT_HEX = "x" * 64
NEEDS_KEY = {
    "api": ["api", "--port", "1"],
    "bridge": ["bridge", "mqtt"],
    "simulate transit": ["simulate", "--feeds", "transit", "--duration", "60", "--out", "unused.jsonl.gz"],
    "dlq replay": ["dlq", "replay", "--dry-run", "--feed", "transit"],
}


def run_ioc(args: list[str], tmp_path, key: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    # Nothing to connect to: a process that went past its start-up check fails fast, not hangs.
    env |= {"IOC_KAFKA_BOOTSTRAP": "127.0.0.1:1", "IOC_REDIS_URL": "redis://127.0.0.1:1/0"}
    if key is not None:
        env["IOC_CARD_HMAC_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "ioc", *args],
        env=env,
        cwd=tmp_path,  # no .env file of the checkout
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("name", sorted(NEEDS_KEY))
def test_refused_without_a_key(name, tmp_path):
    done = run_ioc(NEEDS_KEY[name], tmp_path, key=None)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "IOC_CARD_HMAC_KEY is not set" in output and "secrets.token_hex(32)" in output
    assert "Traceback" not in output
    assert not (tmp_path / "unused.jsonl.gz").exists()


@pytest.mark.parametrize("key", [SHORT, NOT_HEX])
@pytest.mark.parametrize("name", ["api", "bridge"])
def test_refused_with_a_short_or_non_hex_key_which_is_not_shown(name, key, tmp_path):
    done = run_ioc(NEEDS_KEY[name], tmp_path, key=key)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "IOC_CARD_HMAC_KEY must be at least 64 hexadecimal characters" in output
    assert key not in output
    assert "Traceback" not in output


def test_a_process_that_never_sees_card_ids_starts_without_a_key(tmp_path):
    args = ["simulate", "--feeds", "air", "--duration", "60", "--out", "air.jsonl.gz"]
    done = run_ioc(args, tmp_path, key=None)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "air.jsonl.gz").exists()
