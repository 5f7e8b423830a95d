"""Every Smart Data Models example entity as published (issue 18) is read by the edge: accepted, with the
measures ioc keeps in ioc's units and every other attribute dropped and named, never a rejection."""

from __future__ import annotations

import json

import pytest

from ioc.ingest.edge import Accepted, prepare_ngsi_ld
from tests.fiware import as_unregistered, every_example, expected_measures, published
from tests.unit.test_ngsi_ld_messages import OPTIONS


@pytest.mark.parametrize(("entity_type", "form"), every_example())
def test_each_published_example_is_accepted_with_its_measures(entity_type, form):
    entity = as_unregistered(published(entity_type, form), form)
    outcome = prepare_ngsi_ld(entity, **OPTIONS)
    assert isinstance(outcome, Accepted), outcome.detail
    value = json.loads(outcome.value)
    expected = expected_measures(entity_type, form)
    assert {name: value.get(name) for name in expected} == pytest.approx(expected)
    assert outcome.dropped and not set(outcome.dropped) & set(value)
