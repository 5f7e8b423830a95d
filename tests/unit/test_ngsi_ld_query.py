"""NGSI-LD's query language (ETSI GS CIM 009 §4.9, issue 18): ``q`` parsed into a tree, each form of the
grammar, precedence, and how each term holds on ioc's entities, normalized and keyValues."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from ioc.ngsi_ld.query import (
    MAX_DEPTH,
    And,
    Attribute,
    Or,
    QueryError,
    Range,
    Term,
    matches,
    parse_query,
)

HANOI = timezone(timedelta(hours=7))
KIM_LIEN = {
    "id": "urn:ngsi-ld:AirQualityObserved:air-kim-lien",
    "type": "AirQualityObserved",
    "dateObserved": {"type": "Property", "value": {"@type": "DateTime", "@value": "2026-01-15T01:00:50Z"}},
    "pm25": {"type": "Property", "value": 80.5, "observedAt": "2026-01-15T01:00:50Z", "unitCode": "GQ"},
    "no2": [
        {"type": "Property", "value": 41, "datasetId": "urn:ngsi-ld:Dataset:raw"},
        {"type": "Property", "value": 40},
    ],
    "name": {"type": "Property", "value": "Kim Liên"},
    "typeofLocation": {"type": "Property", "value": ["urban", "background"]},
    "calibrated": {"type": "Property", "value": True},
    "address": {"type": "Property", "value": {"addressLocality": "Hà Nội", "district": "Đống Đa"}},
    "refRoadSegment": {"type": "Relationship", "object": "urn:ngsi-ld:RoadSegment:giai-phong"},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [105.839, 21.008]}},
}
KEY_VALUES = {
    "id": KIM_LIEN["id"],
    "type": "AirQualityObserved",
    "dateObserved": "2026-01-15T01:00:50Z",
    "pm25": 80.5,
    "name": "Kim Liên",
}


def pm25(op: str | None, value: object = None) -> Term:
    return Term(Attribute("pm25"), op, value)


@pytest.mark.parametrize(
    ("q", "tree"),
    [
        ("pm25", pm25(None)),
        ("pm25==80.5", pm25("==", 80.5)),
        ("pm25!=80", pm25("!=", 80)),
        ("pm25>50", pm25(">", 50)),
        ("pm25>=-1.5e2", pm25(">=", -150.0)),
        ("pm25<50", pm25("<", 50)),
        ("pm25<=50", pm25("<=", 50)),
        ("pm25==1..5", pm25("==", Range(1, 5))),
        ("pm25!=1,2,3", pm25("!=", (1, 2, 3))),
        ('name=="Kim Liên"', Term(Attribute("name"), "==", "Kim Liên")),
        ('name=="a;b|c)"', Term(Attribute("name"), "==", "a;b|c)")),
        ('name=="say \\"hi\\""', Term(Attribute("name"), "==", 'say "hi"')),
        ('name=="a","b"', Term(Attribute("name"), "==", ("a", "b"))),
        ('name=="a".."m"', Term(Attribute("name"), "==", Range("a", "m"))),
        ("calibrated==true", Term(Attribute("calibrated"), "==", True)),
        (
            "refRoadSegment==urn:ngsi-ld:RoadSegment:x",
            Term(Attribute("refRoadSegment"), "==", "urn:ngsi-ld:RoadSegment:x"),
        ),
        (
            "dateObserved>2026-01-15T08:00:00+07:00",
            Term(Attribute("dateObserved"), ">", datetime(2026, 1, 15, 1, tzinfo=UTC)),
        ),
        (  # an unencoded '+' in a URL arrives as a space
            "dateObserved>2026-01-15T08:00:00 07:00",
            Term(Attribute("dateObserved"), ">", datetime(2026, 1, 15, 8, tzinfo=HANOI)),
        ),
        (  # without an offset: UTC
            "dateObserved<2026-01-15T01:00:00",
            Term(Attribute("dateObserved"), "<", datetime(2026, 1, 15, 1, tzinfo=UTC)),
        ),
        ("day==2026-01-15", Term(Attribute("day"), "==", date(2026, 1, 15))),
        (
            "pm25.observedAt>=2026-01-15T01:00:00Z",
            Term(Attribute("pm25", ("observedAt",)), ">=", datetime(2026, 1, 15, 1, tzinfo=UTC)),
        ),
        ('address[district]=="Đống Đa"', Term(Attribute("address", (), ("district",)), "==", "Đống Đa")),
        ("pm25>50;no2<40", And((pm25(">", 50), Term(Attribute("no2"), "<", 40)))),
        ("a|b;c", Or((Term(Attribute("a")), And((Term(Attribute("b")), Term(Attribute("c"))))))),
        ("(a|b);c", And((Or((Term(Attribute("a")), Term(Attribute("b")))), Term(Attribute("c"))))),
        (" ( pm25 > 50 ) ", pm25(">", 50)),
    ],
)
def test_each_form_of_the_grammar_parses(q, tree):
    assert parse_query(q) == tree


def test_a_pattern_compiles():
    term = parse_query('name~="^Kim"')
    assert isinstance(term, Term) and term.op == "~=" and term.value == re.compile("^Kim")
    assert parse_query("name!~=Li.n").value.pattern == "Li.n"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("q", "says"),
    [
        ("", "expected an attribute name"),
        ("pm25>", "expected a value"),
        ("pm25>>5", "not a value"),
        ("pm25==high", "not a value: quote text"),
        ('name=="open', "not closed"),
        ("(pm25>5", "expected ')'"),
        ("pm25>5)", "expected ';', '|' or the end"),
        ("pm25>5;", "expected an attribute name"),
        ("pm25>1,2", "a list of values goes with '==' or '!='"),
        ("pm25<1..2", "a range goes with '==' or '!='"),
        ('pm25==1.."z"', "a range's ends"),
        ("calibrated>true", "true and false compare with"),
        ("dateObserved>2026-13-01T00:00:00Z", "month must be in 1..12"),
        ("name~=(", "not a regular expression"),
        ("address[district", "expected ']'"),
        ("pm25.>4", "expected a sub-attribute name"),
        ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), "nested parentheses"),
        ("a==1;" * 1000 + "a", "at most 4096"),
    ],
)
def test_a_bad_query_is_refused_saying_where_and_why(q, says):
    with pytest.raises(QueryError, match=re.escape(says)):
        parse_query(q)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("pm25", True),
        ("pm10", False),
        ("pm25==80.5", True),
        ("pm25==80", False),
        ("pm25!=80", True),
        ("pm25!=80.5", False),
        ("pm10!=80", False),  # an attribute the entity lacks: every term is false
        ('pm25!="high"', False),  # a number never compares with text
        ("pm25>80;pm25<81", True),
        ("pm25>=80.5", True),
        ("pm25>80.5", False),
        ("pm25<=80.5", True),
        ("pm25<80.5", False),
        ("pm25==80..81", True),
        ("pm25==81..90", False),
        ("pm25!=81..90", True),
        ("pm25==1,80.5,3", True),
        ("pm25!=1,2", True),
        ("pm25!=1,80.5", False),
        ('pm25=="80.5"', False),
        ("no2==40", True),  # the default instance, not the one with a datasetId
        ("no2==41", False),
        ('name=="Kim Liên"', True),
        ('name>"Kim"', True),
        ('name~="^Kim L"', True),
        ("name~=^Lien", False),
        ("name!~=^Lien", True),
        ("pm25~=80", False),  # a pattern searches text only
        ('typeofLocation=="background"', True),  # a list: any member
        ('typeofLocation!="background"', False),  # none may equal
        ('typeofLocation!="rural"', True),
        ("calibrated==true", True),
        ("calibrated==1", False),  # a boolean is not a number
        ("calibrated!=false", True),
        ('address[district]=="Đống Đa"', True),
        ("address[ward]", False),
        ("refRoadSegment==urn:ngsi-ld:RoadSegment:giai-phong", True),  # a Relationship's object
        ("dateObserved>=2026-01-15T08:00:50+07:00", True),
        ("dateObserved>2026-01-15T01:00:50Z", False),
        ("dateObserved==2026-01-15T01:00:00Z..2026-01-15T02:00:00Z", True),
        ("pm25.observedAt<2026-01-15T01:00:00", False),
        ('pm25.unitCode=="GQ"', True),
        ("pm25.unitCode", True),
        ("name.unitCode", False),
        ("pm25>100|no2==40", True),
        ("pm25>100|no2==41", False),
        ("(pm25>100|no2==40);name", True),
        ("pm25>100|no2==40;name==false", False),  # ';' binds tighter: pm25>100 | (no2==40 ; …)
        ("pm25>100;no2==40|name", True),
    ],
)
def test_how_each_term_holds_on_a_normalized_entity(q, expected):
    assert matches(parse_query(q), KIM_LIEN) is expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("pm25>80", True),
        ('name=="Kim Liên"', True),
        ("dateObserved<2026-01-15T02:00:00Z", True),
        ("pm25.observedAt", False),  # keyValues has no sub-attributes
    ],
)
def test_a_key_values_entity_answers_the_same_terms(q, expected):
    assert matches(parse_query(q), KEY_VALUES) is expected
