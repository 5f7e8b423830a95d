-- The KPIs' closed local days, so that a month is not computed again from its windows on every read.
--
-- kpi_days: per local day, each station's, detector's and sensor's day values (``ioc.kpis.days``: air
-- station-days, traffic detector-days, water station-days, transit station-days per line, readings per
-- sensor-day), written by the KPI reader when it first computes a closed day; areas and the city are
-- summed from them on every read (a month's median or flow-weighted mean is not a sum of daily area
-- figures). ``basis``: the KPI definitions' version, the standard and the registry they were computed with;
-- a day of another basis is computed again. Today is never kept: it is computed on every read.
--
-- kpi_days_changed: the local days the sink wrote windows or fare taps of; their kept values are stale
-- and the next read (or `ioc kpi recompute`) computes them again.

CREATE TABLE kpi_days (
    day         date        PRIMARY KEY,
    basis       text        NOT NULL,
    computed_at timestamptz NOT NULL,
    body        json        NOT NULL  -- json, not jsonb: kept as written, its floats come back bit for bit
);

CREATE TABLE kpi_days_changed (
    day        date        PRIMARY KEY,
    changed_at timestamptz NOT NULL  -- a reader clears the mark only if nobody marked it again since
);
