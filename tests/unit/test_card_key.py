"""The card HMAC key has no default: 32 random bytes in hex when set, and the demo makes one per run."""

import io

import pytest
from pydantic import SecretStr, ValidationError
from rich.console import Console

from ioc.demo import demo_card_key
from ioc.privacy import CardKeyMissing, require_card_key
from ioc.settings import Settings

GOOD = "0123456789abcdef" * 4  # 64 hex characters: 32 bytes


def test_no_default_key(monkeypatch):
    monkeypatch.delenv("IOC_CARD_HMAC_KEY", raising=False)
    settings = Settings(_env_file=None)
    assert settings.card_hmac_key is None
    with pytest.raises(CardKeyMissing, match="IOC_CARD_HMAC_KEY is not set.*token_hex"):
        require_card_key(settings)


def test_an_empty_key_is_no_key(monkeypatch):
    monkeypatch.setenv("IOC_CARD_HMAC_KEY", "")
    assert Settings(_env_file=None).card_hmac_key is None


@pytest.mark.parametrize(
    "value",
    [
        "dev-only-change-me",  # the old public default
        "privacy-test-card-key",
        GOOD[:-2],  # 31 bytes
        GOOD[:-1] + "g",  # not hex
        "ab cd" * 20,  # spaces are not hex digits
    ],
)
def test_a_short_or_non_hex_key_is_an_error_that_does_not_show_it(monkeypatch, value):
    monkeypatch.setenv("IOC_CARD_HMAC_KEY", value)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)
    message = str(caught.value)
    assert "IOC_CARD_HMAC_KEY must be at least 64 hexadecimal characters" in message
    assert value not in message


@pytest.mark.parametrize("value", [GOOD, GOOD.upper(), GOOD * 2, f" {GOOD}\n"])
def test_a_key_of_32_bytes_or_more_in_hex_is_taken(monkeypatch, value):
    monkeypatch.setenv("IOC_CARD_HMAC_KEY", value)
    settings = Settings(_env_file=None)
    assert isinstance(settings.card_hmac_key, SecretStr)
    assert value.strip() not in repr(settings) and value.strip() not in str(settings.model_dump())
    assert require_card_key(settings) == value.strip().encode()


def test_the_demo_makes_a_random_key_per_run_and_says_so_without_showing_it(monkeypatch):
    monkeypatch.delenv("IOC_CARD_HMAC_KEY", raising=False)
    out = io.StringIO()
    console = Console(file=out, width=200)
    first = demo_card_key(Settings(_env_file=None), console)["IOC_CARD_HMAC_KEY"]
    second = demo_card_key(Settings(_env_file=None), console)["IOC_CARD_HMAC_KEY"]
    assert first != second
    for key in (first, second):
        assert Settings(_env_file=None, card_hmac_key=key).card_hmac_key.get_secret_value() == key
        assert key not in out.getvalue()
    assert "random IOC_CARD_HMAC_KEY made for this run" in out.getvalue()


def test_the_demo_keeps_a_key_that_is_set(monkeypatch):
    monkeypatch.setenv("IOC_CARD_HMAC_KEY", GOOD)
    out = io.StringIO()
    assert demo_card_key(Settings(_env_file=None), Console(file=out)) == {}
    assert GOOD not in out.getvalue()
