"""``ioc dlq list | show | replay`` against a real DLQ topic with a few dead letters in it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer
from typer.testing import CliRunner

from connectors.dlq import read_dlq
from connectors.kafka import create_topics, kafka_python_options
from connectors.sources.mqtt import Edge
from ioc.cli import app
from ioc.ingest.edge import Rejected, prepare, prepare_json
from ioc.privacy import pseudonymise_card
from ioc.settings import Settings
from tests.conftest import settings_env
from tests.processes import read_topic

pytestmark = pytest.mark.integration

AIR, WATER, STATION = "air-trung-yen", "water-to-lich-nghia-do", "metro-2a-cat-linh"
RAW_CARD = "9704000011112222"
AT = datetime(2026, 1, 15, 1, 0, tzinfo=UTC)


def bad_air() -> dict:
    return {"sensorId": AIR, "dateObserved": "2026-01-15T08:00:00+07:00", "pm25": -3.0}


def bad_tap() -> dict:
    return {
        "sensorId": STATION,
        "dateObserved": "2026-01-15T08:00:00+07:00",
        "eventId": "tap-9",
        "cardId": RAW_CARD,
        "cardType": "adult",
        "mode": "metro",
        "line": "2A",
        "deviceId": "gate-1",
        "direction": "ENTRY",
        "fare": -1,
    }


@pytest.fixture
def letters(settings: Settings) -> dict[str, str]:
    """Five records in the DLQ, made by the ingest edge (one is not a dead letter); name → position."""
    edge = Edge.from_settings(settings)
    options = dict(
        city=edge.city, card_key=edge.card_key, card_key_id=edge.card_key_id, source="test", received_at=AT
    )
    rejected: dict[str, Rejected] = {
        "air": prepare("air", bad_air(), **options),
        "text": prepare_json("air", b'{"sensorId": "air-trung-yen", "pm25":', **options),
        "water": prepare(
            "water", {"sensorId": WATER, "dateObserved": "2026-01-15T08:00:00+07:00", "ph": 15}, **options
        ),
        "transit": prepare("transit", bad_tap(), **options),
    }
    assert all(isinstance(r, Rejected) for r in rejected.values())
    create_topics(
        settings, [settings.dlq_topic, *(settings.raw_topic(f) for f in ("air", "water", "transit"))]
    )
    producer = KafkaProducer(**kafka_python_options(settings), acks="all")
    positions = {}
    for name, outcome in rejected.items():
        sent = producer.send(settings.dlq_topic, key=outcome.dlq_key, value=outcome.dead_letter().to_json())
        metadata = sent.get(timeout=30)
        positions[name] = f"{metadata.partition}:{metadata.offset}"
    metadata = producer.send(settings.dlq_topic, key=b"x", value=b"not a dead letter").get(timeout=30)
    positions["junk"] = f"{metadata.partition}:{metadata.offset}"
    producer.close()
    return positions


def listed(output: str) -> dict[str, str]:
    """The rows of `ioc dlq list`, by position."""
    return {line.split()[0]: line for line in output.splitlines() if re.match(r"\s*\d+:\d+\s", line)}


def ioc(settings: Settings, *args: str, **env: str):
    return CliRunner().invoke(app, list(args), env=settings_env(settings) | {"COLUMNS": "250"} | env)


def test_list_shows_every_dead_letter_and_counts_them(settings: Settings, letters: dict[str, str]) -> None:
    result = ioc(settings, "dlq", "list")
    assert result.exit_code == 0, result.output
    rows = listed(result.output)
    assert set(rows) == set(letters.values())
    assert "pm25: Input should be greater than or equal to 0 (got -3.0)" in rows[letters["air"]]
    assert " unparseable " in rows[letters["text"]]
    assert "not a dead letter" in rows[letters["junk"]]
    assert "2026-01-15T08:00:00+07:00" in rows[letters["air"]]  # the rejection time, in Hanoi's time zone
    assert f"5 dead letters in {settings.dlq_topic}" in result.output
    counts = dict(
        re.findall(r"^\s*(invalid|unparseable|air|water|transit|\?)\s+(\d+)\s*$", result.output, re.M)
    )
    assert counts == {"invalid": "3", "unparseable": "1", "?": "1", "air": "2", "water": "1", "transit": "1"}
    assert RAW_CARD not in result.output

    only = ioc(settings, "dlq", "list", "--reason", "unparseable")
    assert set(listed(only.output)) == {letters["text"]}
    water = ioc(settings, "dlq", "list", "--feed", "water", "--since", "2026-01-15T07:59:00+07:00")
    assert set(listed(water.output)) == {letters["water"]} and "1 dead letter in" in water.output
    later = ioc(settings, "dlq", "list", "--feed", "water", "--since", "2026-01-15T08:01:00+07:00")
    assert later.exit_code == 0 and "no dead letters" in later.output
    newest = ioc(settings, "dlq", "list", "--limit", "2")
    assert len(listed(newest.output)) == 2 and "the newest 2" in newest.output


def test_show_prints_the_whole_dead_letter(settings: Settings, letters: dict[str, str]) -> None:
    result = ioc(settings, "dlq", "show", letters["transit"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["position"] == letters["transit"]
    assert (shown["reason"], shown["feed"], shown["key"]) == ("invalid", "transit", STATION)
    assert shown["payload"]["fare"] == -1 and shown["payload"]["cardIdHash"] == card_hash(settings)
    assert RAW_CARD not in result.output

    missing = ioc(settings, "dlq", "show", "0:999")
    assert missing.exit_code == 1 and "no dead letter at 0:999" in missing.output
    assert ioc(settings, "dlq", "show", "zero").exit_code == 1


def card_hash(settings: Settings) -> str:
    return pseudonymise_card(RAW_CARD, settings.card_hmac_key.get_secret_value().encode(), "k1")[0]


def test_replay_as_is_fails_again_and_points_back(settings: Settings, letters: dict[str, str]) -> None:
    result = ioc(settings, "dlq", "replay", "--offset", letters["air"], "--offset", letters["text"])
    assert result.exit_code == 1, result.output
    assert "2 still failing" in result.output
    again = [s.letter for s in read_dlq(settings) if s.letter and s.letter.source.startswith("replay of")]
    assert sorted((letter.source, letter.reason) for letter in again) == sorted(
        [
            (f"replay of {settings.dlq_topic} {letters['air']}", "invalid"),
            (f"replay of {settings.dlq_topic} {letters['text']}", "unparseable"),
        ]
    )
    assert read_topic(settings, settings.raw_topic("air"), expect=1, timeout=3) == []


def test_replay_a_fix_file_lands_in_the_raw_topics(
    settings: Settings, letters: dict[str, str], tmp_path: Path
) -> None:
    fixed_tap = json.loads(ioc(settings, "dlq", "show", letters["transit"]).output)["payload"] | {
        "fare": 8000
    }
    fix = tmp_path / "fix.jsonl"
    fix.write_text(
        json.dumps({"offset": letters["air"], "item": bad_air() | {"pm25": 3.0}})
        + "\n# a comment\n"
        + json.dumps({"offset": letters["transit"], "item": fixed_tap})
        + "\n"
    )
    dry = ioc(settings, "dlq", "replay", "--fix", str(fix), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"1 would go to {settings.raw_topic('air')}" in dry.output
    assert read_topic(settings, settings.raw_topic("air"), expect=1, timeout=3) == []

    result = ioc(settings, "dlq", "replay", "--fix", str(fix))
    assert result.exit_code == 0, result.output
    assert "all 2 replayed" in result.output
    (air,) = read_topic(settings, settings.raw_topic("air"), expect=1)
    assert air["key"] == AIR and air["value"]["pm25"] == 3.0 and "ingestTime" in air["value"]
    (tap,) = read_topic(settings, settings.raw_topic("transit"), expect=1)
    assert tap["value"]["fare"] == 8000 and tap["value"]["cardIdHash"] == card_hash(settings)


def test_replay_edit_opens_the_letters_in_the_editor(
    settings: Settings, letters: dict[str, str], tmp_path: Path
) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i \'s/"pm25": -3.0/"pm25": 4.5/\' "$1"\n')
    editor.chmod(0o755)
    result = ioc(
        settings,
        "dlq",
        "replay",
        "--feed",
        "air",
        "--reason",
        "invalid",
        "--edit",
        EDITOR=str(editor),
        VISUAL=str(editor),
    )
    assert result.exit_code == 0, result.output
    (air,) = read_topic(settings, settings.raw_topic("air"), expect=1)
    assert air["value"]["pm25"] == 4.5


def test_replay_needs_a_selection(settings: Settings, letters: dict[str, str]) -> None:
    result = ioc(settings, "dlq", "replay")
    assert result.exit_code == 2 and "choose what to replay" in result.output


def test_list_shows_text_that_looks_like_rich_markup_as_it_is(settings: Settings) -> None:
    edge = Edge.from_settings(settings)
    item = {"sensorId": AIR, "dateObserved": "2026-01-15T08:00:00+07:00", "pm25": "[/x] [bold]"}
    outcome = prepare(
        "air", item, city=edge.city, card_key=edge.card_key, card_key_id=edge.card_key_id,
        source="test", received_at=AT,
    )  # fmt: skip
    assert isinstance(outcome, Rejected)
    create_topics(settings, [settings.dlq_topic])
    producer = KafkaProducer(**kafka_python_options(settings), acks="all")
    producer.send(settings.dlq_topic, key=outcome.dlq_key, value=outcome.dead_letter().to_json()).get(30)
    producer.close()
    result = ioc(settings, "dlq", "list")
    assert result.exit_code == 0, result.output
    assert '(got "[/x] [bold]")' in result.output
