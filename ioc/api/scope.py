"""District scopes of operator keys (``name:operator@dong-da+ba-dinh:key``, issue 16: least privilege).

A scoped operator sees and acts on its districts' sensors, alerts, incidents, silences and stream events
only. What is outside its scope it cannot tell from what does not exist: one alert, sensor or silence by id
is a 404, as for an unknown id. A district it names itself (a filter, an area) is a 403 instead: the
districts are public (the console's map), and a 403 says why the answer would be empty. Its KPIs
(``GET /v1/kpis``) are its districts' rows only, no city-wide one (``ioc.kpis.scope``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from fastapi import HTTPException

from ioc.alerts.audit import AuditEntry
from ioc.alerts.silence import Matchers, districts_matched
from ioc.api.auth import Caller
from ioc.api.responses import problem

SCOPE_NOTE = (
    "A key scoped to districts (`operator@dong-da+ba-dinh`) gets only what belongs to them; a district "
    "outside its scope named in a filter is a 403."
)
ROLE_403 = "The key's role may not use this endpoint (integrator keys may not)."
OUTSIDE_SCOPE = problem(
    f"{ROLE_403} Or: the key is scoped to districts, and the request names a district outside them.",
    "Key alice is scoped to dong-da; district hoan-kiem is outside it.",
)


def districts_for(caller: Caller, asked: Sequence[str] | None) -> tuple[str, ...]:
    """The districts a filter reads: those ``asked`` (none: all), within the caller's scope. A district
    asked for outside the scope is a 403 naming it."""
    if caller.districts is None:
        return tuple(asked or ())
    if outside := sorted(set(asked or ()) - caller.districts):
        raise HTTPException(403, outside_message(caller, outside[0]))
    return tuple(asked) if asked else tuple(sorted(caller.districts))


def outside_message(caller: Caller, district: str) -> str:
    return (
        f"Key {caller.name} is scoped to {', '.join(sorted(caller.districts or ()))}; district {district} is "
        "outside it."
    )


def silence_visible(caller: Caller, matchers: Matchers, districts: Collection[str]) -> bool:
    """Whether a scoped caller sees a silence: it may mute an alert of one of its districts (a city-wide
    silence does; the caller's own alerts say ``suppressedBy`` it)."""
    return caller.districts is None or bool(districts_matched(matchers, districts) & caller.districts)


def silence_confined(caller: Caller, matchers: Matchers, districts: Collection[str]) -> bool:
    """Whether a silence mutes alerts of the caller's districts only: what a scoped caller may create or
    end (a silence without a district matcher mutes every district's)."""
    return caller.districts is None or districts_matched(matchers, districts) <= caller.districts


def audit_visible(caller: Caller, entry: AuditEntry, districts: Collection[str]) -> bool:
    """Whether a scoped caller sees an audit entry: an alert's of its districts, a visible silence's."""
    if caller.districts is None:
        return True
    if entry.matchers is not None:
        return silence_visible(caller, entry.matchers, districts)
    return entry.district in caller.districts
