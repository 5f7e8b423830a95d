"""Public transit: one fare-card tap at a gate or validator (metro, BRT, bus).

Wire fields (camelCase): ``sensorId`` — registry id of the station or stop, which keys the stream;
``eventId`` — the tap's id at the source, for idempotency; ``cardIdHash`` — HMAC-SHA256 of the card id
as 64 lowercase hex digits, ``cardKeyId`` — which key made it (keys rotate); ``cardType`` (adult,
student, elderly, monthly_pass, day_pass); ``mode`` (metro, bus, brt); ``line`` — line or route id;
``deviceId`` — the gate or validator; ``direction`` (ENTRY, EXIT on metro and BRT gates; BOARD on buses
and BRT); ``fare`` — VND charged by this tap (metro charges on exit; 0 for passes).

The raw card id never reaches this model: the ingest edge pseudonymises it. The shape check on
``cardIdHash`` refuses anything that is not a digest, so a raw id sent by mistake is rejected.
Ridership is counted, not averaged, so there are no window measures.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from ioc.models.base import Event, FieldUnit

HMAC_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class CardType(StrEnum):
    ADULT = "adult"
    STUDENT = "student"
    ELDERLY = "elderly"
    MONTHLY_PASS = "monthly_pass"
    DAY_PASS = "day_pass"


class Mode(StrEnum):
    METRO = "metro"
    BUS = "bus"
    BRT = "brt"


class Direction(StrEnum):
    ENTRY = "ENTRY"
    EXIT = "EXIT"
    BOARD = "BOARD"


# Metro has gates at both ends, a bus a validator at the door; BRT stations in Hanoi have either.
DIRECTIONS_BY_MODE: dict[Mode, frozenset[Direction]] = {
    Mode.METRO: frozenset({Direction.ENTRY, Direction.EXIT}),
    Mode.BUS: frozenset({Direction.BOARD}),
    Mode.BRT: frozenset({Direction.ENTRY, Direction.EXIT, Direction.BOARD}),
}


class FareTap(Event):
    feed: ClassVar[str] = "transit"
    measures: ClassVar[tuple[FieldUnit, ...]] = ()

    event_id: str = Field(min_length=1, max_length=128, description="The tap's id at the source.")
    card_id_hash: str = Field(description="HMAC-SHA256 of the card id, 64 lowercase hex digits.")
    card_key_id: str = Field(
        min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$", description="Id of the HMAC key."
    )
    card_type: CardType
    mode: Mode
    line: str = Field(min_length=1, max_length=32, description="Line or route id, e.g. 2A, BRT01, 32.")
    device_id: str = Field(min_length=1, max_length=64, description="Gate or validator id.")
    direction: Direction
    fare: int = Field(ge=0, le=1_000_000, description="Fare charged by this tap, VND.")

    @field_validator("card_id_hash")
    @classmethod
    def _is_a_digest(cls, value: str) -> str:
        if not HMAC_SHA256_HEX.fullmatch(value):
            raise ValueError(
                "must be the HMAC-SHA256 of the card id as 64 lowercase hex digits "
                "(pseudonymise the card id before sending)"
            )
        return value

    @model_validator(mode="after")
    def _direction_fits_mode(self) -> FareTap:
        allowed = DIRECTIONS_BY_MODE[self.mode]
        if self.direction not in allowed:
            names = " or ".join(sorted(allowed))
            raise ValueError(f"direction {self.direction} is not possible on {self.mode}: use {names}")
        return self
