"""Where an offset stands against the last one counted of its partition (streams.checkpointing)."""

from __future__ import annotations

import pytest
from faust.types import TP

from streams.checkpointing import Admission, admission, position_key


@pytest.mark.parametrize(
    ("last", "offset", "expected"),
    [
        (None, 0, Admission.NEXT),  # a partition with no state yet takes what comes first
        (None, 5_000, Admission.NEXT),
        (41, 42, Admission.NEXT),
        (41, 41, Admission.REPEAT),  # read again after a restart whose commit had not happened
        (41, 0, Admission.REPEAT),
        (41, 43, Admission.AHEAD),  # offset 42 was dropped
        (41, 1_000, Admission.AHEAD),
    ],
)
def test_admission(last: int | None, offset: int, expected: Admission):
    assert admission(last, offset) is expected


def test_each_topic_partition_has_its_own_key():
    keys = {
        position_key(TP(topic, partition))
        for topic in ("ioc.raw.air", "ioc.anomalies")
        for partition in (0, 1)
    }
    assert keys == {"ioc.raw.air[0]", "ioc.raw.air[1]", "ioc.anomalies[0]", "ioc.anomalies[1]"}
