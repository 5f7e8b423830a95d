"""NGSI-LD queries in CPU time (issue 18): what a q and a geo-query cost per entity, and what the temporal
query's q costs at its cap of windows. No servers: the pure functions the API calls, on synthetic entities.

    python benchmarks/ngsi_ld_query.py                       # 10,000 entities, 100,000 windows
    python benchmarks/ngsi_ld_query.py --entities 1000 --windows 10000

Figures: the time to parse one q; q, near and within over ``--entities`` current entities (as
``GET /ngsi-ld/v1/entities`` filters them); and the temporal query's work per window over ``--windows``
windows (each a current entity built from the window's means, then q), which ``TEMPORAL_MAX_WINDOWS``
bounds per request.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.api.ngsi_ld import TEMPORAL_MAX_WINDOWS
from ioc.models.ngsi_ld import current_entity
from ioc.ngsi_ld.geo import geo_matches, parse_geo_query
from ioc.ngsi_ld.query import matches, parse_query

AT = datetime(2026, 1, 15, 1, tzinfo=UTC)
Q = "(pm25>50;pm25<150|no2==40..41);name~=^S;pm25.observedAt>=2026-01-15T00:00:00Z"
SQUARE = "[[[105.79,21.0],[105.81,21.0],[105.81,21.5],[105.79,21.5],[105.79,21.0]]]"


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--windows", type=int, default=TEMPORAL_MAX_WINDOWS)
    args = parser.parse_args()

    def entity(i: int, at: datetime = AT) -> dict[str, Any]:
        values = {"pm25": float(i % 200), "no2": 40.0, "relative_humidity": 60.0}
        return current_entity(
            "AirQualityObserved", f"s{i}", at, values, location=(21.0 + i * 1e-4, 105.8), name=f"S {i}"
        )

    entities = [entity(i) for i in range(args.entities)]
    parse_s, tree = timed(lambda: parse_query(Q))
    near = parse_geo_query("near;maxDistance==500", "Point", "[105.8,21.05]")
    within = parse_geo_query("within", "Polygon", SQUARE)
    print(f"parse q ({len(Q)} characters): {parse_s * 1e6:.0f} µs")
    for label, test in (
        ("q", lambda e: matches(tree, e)),
        ("near;maxDistance==500", lambda e: geo_matches(near, e)),  # type: ignore[arg-type]
        ("within a polygon", lambda e: geo_matches(within, e)),  # type: ignore[arg-type]
    ):
        seconds, found = timed(lambda test=test: sum(1 for e in entities if test(e)))
        per = seconds / len(entities) * 1e6
        print(
            f"{label} over {len(entities):,} entities: {seconds * 1e3:.0f} ms "
            f"({per:.1f} µs each, {found:,} match)"
        )
    simple = parse_query("pm25>190")
    seconds, found = timed(
        lambda: sum(1 for n in range(args.windows) if matches(simple, entity(n, AT + timedelta(minutes=n))))
    )
    print(
        f"temporal q at each of {args.windows:,} windows: {seconds:.2f} s "
        f"({seconds / args.windows * 1e6:.1f} µs each, {found:,} match)"
    )


if __name__ == "__main__":
    main()
