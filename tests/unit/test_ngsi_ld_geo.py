"""NGSI-LD geo-queries (ETSI GS CIM 009 §4.10, issue 18): the parameters read into a query, each relation
on a sensor's point against a Point or a Polygon (with a hole), and distances in metres."""

from __future__ import annotations

import json
import math
import re

import pytest

from ioc.ngsi_ld.geo import (
    GeoQuery,
    GeoQueryError,
    distance_m,
    entity_point,
    geo_matches,
    haversine_m,
    parse_geo_query,
)

METRES_PER_DEGREE = math.radians(6_371_008.8)  # of latitude, on the mean sphere: 111,195 m
# A 0.02° square around Hoàn Kiếm lake, with a 0.004° hole in its middle.
SQUARE = [[105.84, 21.02], [105.86, 21.02], [105.86, 21.04], [105.84, 21.04], [105.84, 21.02]]
HOLE = [[105.848, 21.028], [105.852, 21.028], [105.852, 21.032], [105.848, 21.032], [105.848, 21.028]]


def entity(lon: float, lat: float, *, key_values: bool = False) -> dict:
    point = {"type": "Point", "coordinates": [lon, lat]}
    return {
        "id": "urn:ngsi-ld:AirQualityObserved:x",
        "location": point if key_values else {"type": "GeoProperty", "value": point},
    }


def query(georel: str, geometry: str, coordinates: object) -> GeoQuery:
    parsed = parse_geo_query(georel, geometry, json.dumps(coordinates))
    assert parsed is not None
    return parsed


def test_no_parameters_no_query_and_the_three_go_together():
    assert parse_geo_query(None, None, None) is None
    with pytest.raises(GeoQueryError, match="together"):
        parse_geo_query("near;maxDistance==10", "Point", None)


def test_parameters_are_read():
    near = query("near;maxDistance==1500", "Point", [105.85, 21.03])
    assert near == GeoQuery("near", "Point", point=(105.85, 21.03), max_distance=1500.0)
    ring = query("within", "Polygon", [SQUARE, HOLE])
    assert ring.rings[0][0] == (105.84, 21.02) and len(ring.rings) == 2 and ring.point is None
    assert parse_geo_query("equals", "Point", "[1, 2]", "observationSpace").geoproperty == "observationSpace"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "says"),
    [
        ("nearby", "Point", "[105.85, 21.03]", "'nearby' is not one of"),
        ("near", "Point", "[105.85, 21.03]", "near needs maxDistance"),
        ("near;maxDistance:100", "Point", "[105.85, 21.03]", "near takes maxDistance==<m>"),
        ("near;maxDistance==far", "Point", "[105.85, 21.03]", "a number of metres, not 'far'"),
        ("near;minDistance==-5", "Point", "[105.85, 21.03]", "0 or more"),
        ("near;maxDistance==nan", "Point", "[105.85, 21.03]", "0 or more"),
        ("within;maxDistance==5", "Polygon", json.dumps([SQUARE]), "within takes no distance"),
        ("within", "LineString", "[[1, 2], [3, 4]]", "ioc answers Point and Polygon"),
        ("equals", "Point", "105.85,21.03", "not a JSON array"),
        ("equals", "Point", "[105.85]", "a position is [longitude, latitude]"),
        ("equals", "Point", '["105.85", 21.03]', "a position is [longitude, latitude]"),
        ("equals", "Point", "[21.03, 105.85]", "is not [longitude, latitude] on the Earth"),
        ("within", "Polygon", json.dumps(SQUARE), "a Polygon's ring is 4 positions"),
        ("within", "Polygon", json.dumps([SQUARE[:-1]]), "ends where it starts"),
        ("within", "Polygon", "[]", "a list of rings"),
    ],
)
def test_a_bad_geo_query_is_refused_naming_the_parameter(georel, geometry, coordinates, says):
    with pytest.raises(GeoQueryError, match=re.escape(says)):
        parse_geo_query(georel, geometry, coordinates)


def test_distances_in_metres():
    assert haversine_m((105.85, 21.0), (105.85, 22.0)) == pytest.approx(METRES_PER_DEGREE, rel=1e-9)
    east = METRES_PER_DEGREE * math.cos(math.radians(21.03)) * 0.01
    assert haversine_m((105.85, 21.03), (105.86, 21.03)) == pytest.approx(east, rel=1e-4)
    square = query("near;maxDistance==1", "Polygon", [SQUARE])
    assert distance_m((105.85, 21.03), square) == 0  # inside
    assert distance_m((105.85, 21.05), square) == pytest.approx(0.01 * METRES_PER_DEGREE, rel=1e-6)  # north
    corner = distance_m((105.87, 21.05), square)  # beyond the north-east corner: to the corner itself
    assert corner == pytest.approx(haversine_m((105.87, 21.05), (105.86, 21.04)), rel=1e-3)


@pytest.mark.parametrize(
    ("georel", "at", "expected"),
    [
        ("near;maxDistance==1200", (105.86, 21.03), True),  # ~1,039 m east
        ("near;maxDistance==1000", (105.86, 21.03), False),
        ("near;minDistance==1000", (105.86, 21.03), True),
        ("near;minDistance==1200", (105.86, 21.03), False),
        ("near;minDistance==1000;maxDistance==1200", (105.86, 21.03), True),
        ("equals", (105.85, 21.03), True),
        ("equals", (105.85, 21.0300001), False),
        ("intersects", (105.85, 21.03), True),
        ("within", (105.85, 21.03), True),
        ("contains", (105.85, 21.03), True),
        ("disjoint", (105.85, 21.03), False),
        ("disjoint", (105.86, 21.03), True),
        ("overlaps", (105.85, 21.03), False),
    ],
)
def test_relations_to_a_point(georel, at, expected):
    reference = query(georel, "Point", [105.85, 21.03])
    assert geo_matches(reference, entity(*at)) is expected
    assert geo_matches(reference, entity(*at, key_values=True)) is expected


@pytest.mark.parametrize(
    ("georel", "at", "expected"),
    [
        ("within", (105.845, 21.025), True),
        ("within", (105.85, 21.03), False),  # in the hole
        ("within", (105.84, 21.03), False),  # on the boundary: not in the interior
        ("within", (105.87, 21.03), False),
        ("intersects", (105.845, 21.025), True),
        ("intersects", (105.84, 21.03), True),  # the boundary intersects
        ("intersects", (105.848, 21.03), True),  # the hole's edge is the polygon's boundary too
        ("intersects", (105.85, 21.03), False),
        ("disjoint", (105.85, 21.03), True),
        ("disjoint", (105.845, 21.025), False),
        ("contains", (105.845, 21.025), False),  # a point contains no polygon
        ("equals", (105.845, 21.025), False),
        ("near;maxDistance==500", (105.85, 21.03), True),  # in the hole: ~210 m from its edge
        ("near;maxDistance==100", (105.85, 21.05), False),  # 1.1 km north
        ("near;maxDistance==1200", (105.85, 21.05), True),
    ],
)
def test_relations_to_a_polygon_with_a_hole(georel, at, expected):
    assert geo_matches(query(georel, "Polygon", [SQUARE, HOLE]), entity(*at)) is expected


def test_an_entity_without_a_point_there_matches_nothing():
    near = query("near;minDistance==0", "Point", [105.85, 21.03])
    assert geo_matches(near, {"id": "x"}) is False
    line = {
        "location": {"type": "GeoProperty", "value": {"type": "LineString", "coordinates": [[1, 2], [3, 4]]}}
    }
    assert entity_point(line) is None and geo_matches(near, line) is False
    other = parse_geo_query("near;minDistance==0", "Point", "[105.85, 21.03]", "observationSpace")
    assert geo_matches(other, entity(105.85, 21.03)) is False  # type: ignore[arg-type]
