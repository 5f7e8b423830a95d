"""NGSI-LD geo-queries (ETSI GS CIM 009 §4.10): ``georel``, ``geometry`` and ``coordinates`` read into a
``GeoQuery``, and whether an entity's GeoProperty satisfies it.

ioc's entities are points (a sensor's registry location), so the target is a Point; the reference
geometry is a Point or a Polygon (with holes). Relations, as OGC Simple Features define them for a point:

- ``near;maxDistance==N`` / ``near;minDistance==N`` (both may be given): the great-circle distance in
  metres to the reference point, or to the polygon (0 inside it), at most / at least N;
- ``intersects``: the point is the reference point, or inside the polygon or on its boundary;
  ``disjoint`` the opposite; ``within``: the point is the reference point, or in the polygon's interior
  (not on its boundary); ``contains`` and ``equals``: the reference is the same point; ``overlaps``:
  never (a point overlaps nothing).

Distances to a polygon's edges use a local flat projection around the point, exact enough at a city's
scale (under a metre's error over tens of kilometres); point-to-point distances are haversine.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
RELATIONS = ("near", "within", "contains", "intersects", "disjoint", "equals", "overlaps")
GEOMETRIES = ("Point", "Polygon")
_SAME_POINT_DEGREES = 1e-9  # ~0.1 mm: coordinates that went through JSON and back

Position = tuple[float, float]  # (longitude, latitude), GeoJSON's order


class GeoQueryError(ValueError):
    """The geo-query is not one ioc reads; the message names the parameter and why."""


@dataclass(frozen=True)
class GeoQuery:
    relation: str
    geometry: str  # Point or Polygon
    point: Position | None = None
    rings: tuple[tuple[Position, ...], ...] = ()  # a Polygon: its exterior ring, then its holes
    max_distance: float | None = None
    min_distance: float | None = None
    geoproperty: str = "location"


def parse_geo_query(
    georel: str | None, geometry: str | None, coordinates: str | None, geoproperty: str | None = None
) -> GeoQuery | None:
    """The geo-query of the request's parameters; None when there is none. Raises ``GeoQueryError``."""
    if georel is None and geometry is None and coordinates is None:
        return None
    if not georel or not geometry or not coordinates:
        raise GeoQueryError("a geo-query needs georel, geometry and coordinates together")
    relation, *modifiers = georel.split(";")
    if relation not in RELATIONS:
        raise GeoQueryError(f"georel: {relation!r} is not one of {', '.join(RELATIONS)}")
    distances = _distances(relation, modifiers)
    if geometry not in GEOMETRIES:
        raise GeoQueryError(f"geometry: {geometry!r}; ioc answers {' and '.join(GEOMETRIES)}")
    try:
        parsed = json.loads(coordinates)
    except json.JSONDecodeError:
        raise GeoQueryError(f"coordinates: not a JSON array: {coordinates[:80]!r}") from None
    common = {"relation": relation, "geometry": geometry, "geoproperty": geoproperty or "location"}
    if geometry == "Point":
        return GeoQuery(point=_position(parsed), **common, **distances)
    return GeoQuery(rings=_rings(parsed), **common, **distances)


def _distances(relation: str, modifiers: list[str]) -> dict[str, float]:
    distances: dict[str, float] = {}
    for modifier in modifiers:
        name, equals, number = modifier.partition("==")
        if not equals or name not in ("maxDistance", "minDistance"):
            raise GeoQueryError(f"georel: {modifier!r}; near takes maxDistance==<m> or minDistance==<m>")
        try:
            metres = float(number)
        except ValueError:
            raise GeoQueryError(f"georel: {name} is a number of metres, not {number!r}") from None
        if not math.isfinite(metres) or metres < 0:
            raise GeoQueryError(f"georel: {name} is a number of metres, 0 or more, not {number!r}")
        distances["max_distance" if name == "maxDistance" else "min_distance"] = metres
    if relation == "near" and not distances:
        raise GeoQueryError("georel: near needs maxDistance==<m> or minDistance==<m>")
    if relation != "near" and distances:
        raise GeoQueryError(f"georel: {relation} takes no distance; near does")
    return distances


def _position(value: Any) -> Position:
    if (
        not isinstance(value, list)
        or len(value) not in (2, 3)
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in value)
    ):
        raise GeoQueryError(f"coordinates: a position is [longitude, latitude], not {json.dumps(value)[:80]}")
    lon, lat = float(value[0]), float(value[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise GeoQueryError(f"coordinates: [{lon}, {lat}] is not [longitude, latitude] on the Earth")
    return lon, lat


def _rings(value: Any) -> tuple[tuple[Position, ...], ...]:
    if not isinstance(value, list) or not value:
        raise GeoQueryError("coordinates: a Polygon is a list of rings, [[[lon, lat], …]]")
    rings = []
    for ring in value:
        if not isinstance(ring, list) or len(ring) < 4:
            raise GeoQueryError("coordinates: a Polygon's ring is 4 positions or more, [[lon, lat], …]")
        positions = tuple(_position(p) for p in ring)
        if positions[0] != positions[-1]:
            raise GeoQueryError("coordinates: a Polygon's ring ends where it starts")
        rings.append(positions)
    return tuple(rings)


# ---------------------------------------------------------------------------------------------------
# Evaluation.


def entity_point(entity: dict[str, Any], geoproperty: str = "location") -> Position | None:
    """The entity's GeoProperty as a point (normalized or keyValues); None when it has no point there."""
    value = entity.get(geoproperty)
    if isinstance(value, dict) and value.get("type") == "GeoProperty":
        value = value.get("value")
    if not isinstance(value, dict) or value.get("type") != "Point":
        return None
    try:
        return _position(value.get("coordinates"))
    except GeoQueryError:
        return None


def geo_matches(query: GeoQuery, entity: dict[str, Any]) -> bool:
    """Whether the entity's point (its ``query.geoproperty``) is in the query's relation to its geometry;
    an entity without one matches nothing."""
    point = entity_point(entity, query.geoproperty)
    if point is None:
        return False
    if query.relation == "near":
        metres = distance_m(point, query)
        return (query.max_distance is None or metres <= query.max_distance) and (
            query.min_distance is None or metres >= query.min_distance
        )
    if query.point is not None:
        same = _same(point, query.point)
        return {"disjoint": not same, "overlaps": False}.get(query.relation, same)
    inside, on_boundary = _in_polygon(point, query.rings)
    return {
        "intersects": inside or on_boundary,
        "disjoint": not (inside or on_boundary),
        "within": inside and not on_boundary,
    }.get(query.relation, False)


def distance_m(point: Position, query: GeoQuery) -> float:
    """Metres from ``point`` to the query's point, or to its polygon (0 inside or on it)."""
    if query.point is not None:
        return haversine_m(point, query.point)
    inside, on_boundary = _in_polygon(point, query.rings)
    if inside or on_boundary:
        return 0.0
    return min(
        _to_segment_m(point, a, b) for ring in query.rings for a, b in zip(ring, ring[1:], strict=False)
    )


def haversine_m(a: Position, b: Position) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _same(a: Position, b: Position) -> bool:
    return abs(a[0] - b[0]) <= _SAME_POINT_DEGREES and abs(a[1] - b[1]) <= _SAME_POINT_DEGREES


def _in_polygon(point: Position, rings: tuple[tuple[Position, ...], ...]) -> tuple[bool, bool]:
    """(in the interior, on the boundary) of a polygon with holes: inside the exterior ring and no hole."""
    if any(_on_ring(point, ring) for ring in rings):
        return False, True
    exterior, *holes = rings
    return _in_ring(point, exterior) and not any(_in_ring(point, hole) for hole in holes), False


def _in_ring(point: Position, ring: tuple[Position, ...]) -> bool:
    """Even-odd ray casting in (lon, lat), as GeoJSON's planar rings are meant."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _on_ring(point: Position, ring: tuple[Position, ...]) -> bool:
    x, y = point
    for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
        cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        length = math.hypot(x2 - x1, y2 - y1)
        within_box = (
            min(x1, x2) - _SAME_POINT_DEGREES <= x <= max(x1, x2) + _SAME_POINT_DEGREES
            and min(y1, y2) - _SAME_POINT_DEGREES <= y <= max(y1, y2) + _SAME_POINT_DEGREES
        )
        if within_box and abs(cross) <= _SAME_POINT_DEGREES * max(length, _SAME_POINT_DEGREES):
            return True
    return False


def _to_segment_m(point: Position, a: Position, b: Position) -> float:
    """Metres from ``point`` to the segment a–b, in a flat projection centred on ``point``."""
    scale_x = math.radians(EARTH_RADIUS_M) * math.cos(math.radians(point[1]))
    scale_y = math.radians(EARTH_RADIUS_M)
    ax, ay = (a[0] - point[0]) * scale_x, (a[1] - point[1]) * scale_y
    bx, by = (b[0] - point[0]) * scale_x, (b[1] - point[1]) * scale_y
    dx, dy = bx - ax, by - ay
    span = dx * dx + dy * dy
    t = 0.0 if span == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / span))
    return math.hypot(ax + t * dx, ay + t * dy)
