"""A registry scaled up with synthetic sensors, for load tests beyond the real city's few hundred."""

from __future__ import annotations

from ioc.city import UNREGISTERED_PREFIX, City

# Transit stations come with their lines; only sampled sensors are copied.
COPIED_KINDS = ("air", "traffic", "water")
JITTER_DEGREES = 0.01


def with_synthetic_sensors(city: City, total: int) -> City:
    """The city with copies of its air, traffic and water sensors added until it has ``total`` sensors.

    Copy ``n`` of sensor ``s`` is ``unregistered:s~nnnnn`` (the pipeline's registry does not know it):
    same kind, district and site type, so it behaves like its original; a small deterministic offset
    in position; no neighbours, no external ids.
    """
    originals = [s for s in city.sensors if s.kind in COPIED_KINDS]
    missing = total - len(city.sensors)
    if missing <= 0 or not originals:
        return city
    copies = []
    for n in range(missing):
        original = originals[n % len(originals)]
        round_ = n // len(originals) + 1
        offset = JITTER_DEGREES * ((round_ * 7919 % 200) / 100 - 1)  # in [-jitter, +jitter), no RNG
        copies.append(
            original.model_copy(
                update={
                    "id": f"{UNREGISTERED_PREFIX}{original.id}~{round_:05d}",
                    "name": f"{original.name} #{round_}",
                    "lat": original.lat + offset,
                    "lon": original.lon - offset,
                    "neighbours": [],
                    "external_ids": [],  # another system's ids name the original, never a copy
                }
            )
        )
    return City.model_validate({**city.model_dump(), "sensors": [*city.sensors, *copies]})
