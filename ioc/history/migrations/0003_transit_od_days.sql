-- What the transit KPIs read instead of a month of taps.
--
-- transit_quarters: each station's taps per line and 15 minutes (boardings: entries and bus boardings),
-- counted by the sink from the taps it newly stored (a tap written again is not counted again).
--
-- transit_od_days: metro trips per service day and station pair, every pair (the KPI suppresses pairs
-- under k on the way out, never here), matched from transit_taps by the KPI reader when a day is first
-- asked for, and again after taps of that day came (transit_days_changed, marked by the sink).

CREATE TABLE transit_quarters (
    station_id text        NOT NULL,
    line       text        NOT NULL,
    quarter    timestamptz NOT NULL,  -- start of the 15 minutes
    boardings  integer     NOT NULL,
    taps       integer     NOT NULL,
    PRIMARY KEY (station_id, line, quarter)
);
CREATE INDEX transit_quarters_quarter ON transit_quarters (quarter);
INSERT INTO transit_quarters
SELECT station_id, line, date_bin('15 minutes', at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       count(*) FILTER (WHERE direction IN ('ENTRY', 'BOARD')), count(*)
FROM transit_taps GROUP BY 1, 2, 3;

CREATE TABLE transit_od_days (
    day         date    NOT NULL,  -- service day, 04:00 to 04:00 local
    origin      text    NOT NULL,
    destination text    NOT NULL,
    trips       integer NOT NULL,
    PRIMARY KEY (day, origin, destination)
);

CREATE TABLE transit_od_totals (
    day               date        PRIMARY KEY,
    unmatched_entries integer     NOT NULL,
    unmatched_exits   integer     NOT NULL,
    matched_at        timestamptz NOT NULL
);

CREATE TABLE transit_days_changed (
    day        date        PRIMARY KEY,
    changed_at timestamptz NOT NULL  -- a reader clears the mark only if nobody marked it again since
);
