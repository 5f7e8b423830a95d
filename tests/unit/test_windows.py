from datetime import datetime, timedelta

import pytest

from ioc.windows import Accepted, Late, WindowAggregate, WindowSpec, add_event, aggregate_of, new_state

T0 = datetime.fromisoformat("2026-01-15T08:00:00+07:00")
SPEC = WindowSpec(size_seconds=60, lateness_seconds=30)
UNITS = {"pm25": "µg/m³", "no2": "µg/m³"}


def add(state, seconds: float, **values: float):
    return add_event(state, event_time=T0 + timedelta(seconds=seconds), values=values, spec=SPEC)


def aggregate(outcome: Accepted) -> WindowAggregate:
    """The aggregate as published, read back as consumers read it."""
    published = aggregate_of(
        outcome.window, feed="air", sensor_id="s1", start=outcome.start, units=UNITS, spec=SPEC
    )
    return WindowAggregate.model_validate_json(published.json)


def test_aggregates_count_mean_min_max_last_per_field():
    state = new_state()
    add(state, 10, pm25=10.0, no2=40.0)
    add(state, 30, pm25=60.0)
    outcome = add(state, 20, pm25=20.0)  # arrives last but is not the newest by event time
    assert isinstance(outcome, Accepted)
    agg = aggregate(outcome)
    assert agg.window == "1m"
    assert agg.window_start == T0 and agg.window_end == T0 + timedelta(minutes=1)
    assert agg.count == 3
    assert agg.last_event_time == T0 + timedelta(seconds=30)
    pm25 = agg.fields["pm25"]
    assert (pm25.count, pm25.mean, pm25.min, pm25.max, pm25.last) == (3, 30.0, 10.0, 60.0, 60.0)
    assert pm25.unit == "µg/m³"
    assert agg.fields["no2"].count == 1 and agg.fields["no2"].mean == 40.0


def test_windows_are_aligned_to_the_epoch_not_to_the_first_event():
    outcome = add(new_state(), 75, pm25=1.0)
    assert aggregate(outcome).window_start == T0 + timedelta(minutes=1)


def test_late_event_within_lateness_updates_its_window():
    state = new_state()
    add(state, 10, pm25=10.0)
    add(state, 70, pm25=99.0)  # watermark 08:01:10; the 08:00 window closes at 08:01:30
    outcome = add(state, 50, pm25=30.0)
    assert isinstance(outcome, Accepted)
    assert aggregate(outcome).window_start == T0
    assert aggregate(outcome).fields["pm25"].mean == 20.0


def test_event_after_window_closed_is_late_and_not_counted():
    state = new_state()
    add(state, 10, pm25=10.0)
    add(state, 95, pm25=99.0)  # watermark 08:01:35 is past 08:01:30
    outcome = add(state, 20, pm25=500.0)
    assert isinstance(outcome, Late)
    assert outcome.window_start == T0
    assert outcome.watermark == T0 + timedelta(seconds=95)
    assert str(int(T0.timestamp())) not in state["windows"]  # closed windows are dropped from state


def test_state_survives_a_json_round_trip():
    import json

    state = new_state()
    add(state, 10, pm25=10.0)
    restored = json.loads(json.dumps(state))
    outcome = add(restored, 20, pm25=30.0)
    assert aggregate(outcome).fields["pm25"].mean == 20.0


@pytest.mark.parametrize(("seconds", "label"), [(60, "1m"), (300, "5m"), (3600, "1h"), (90, "90s")])
def test_window_labels(seconds, label):
    assert WindowSpec(seconds, 0).label == label


def test_the_published_json_is_a_window_aggregate():
    state = new_state()
    add(state, 10, pm25=10.0, no2=40.0)
    outcome = add(state, 30, pm25=60.5)
    indices = {"vnAqi": {"value": 151.0, "band": "xau"}}
    published = aggregate_of(
        outcome.window,
        feed="air",
        sensor_id="s1",
        start=outcome.start,
        units=UNITS,
        spec=SPEC,
        indices=indices,
    )
    parsed = WindowAggregate.model_validate_json(published.json)
    assert parsed.published(published.json) == published
    assert parsed.fields["pm25"].mean == 35.25 and parsed.indices["vnAqi"].band == "xau"
    assert parsed.last_event_time == T0 + timedelta(seconds=30)
