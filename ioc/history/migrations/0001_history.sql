-- The city over time: every window aggregate's final value, every alert event and every incident event.
-- Windows are partitioned by month of their start (a month's partition made when its first row comes,
-- ``ioc.history.store``; a default partition takes anything else), so retention drops whole months.

CREATE TABLE windows (
    feed        text        NOT NULL,
    window_len  text        NOT NULL,  -- the window's label: 1m, 15m, 1h …
    sensor_id   text        NOT NULL,
    start       timestamptz NOT NULL,
    count       integer     NOT NULL,  -- readings counted: a later version of the window has more
    last_event  timestamptz NOT NULL,
    means       jsonb       NOT NULL,  -- field → mean, what history queries read
    aggregate   jsonb       NOT NULL,  -- the published WindowAggregate, whole
    PRIMARY KEY (feed, window_len, sensor_id, start)
) PARTITION BY RANGE (start);

CREATE TABLE windows_default PARTITION OF windows DEFAULT;

CREATE TABLE alert_events (
    alert_id   text        NOT NULL,
    revision   integer     NOT NULL,
    change     text        NOT NULL,
    at         timestamptz NOT NULL,  -- event time of the change
    rule       text        NOT NULL,
    feed       text        NOT NULL,
    district   text        NOT NULL,
    entity     text        NOT NULL,
    severity   text        NOT NULL,
    status     text        NOT NULL,
    event      jsonb       NOT NULL,
    PRIMARY KEY (alert_id, revision)
);
CREATE INDEX alert_events_at ON alert_events (at);
CREATE INDEX alert_events_district_at ON alert_events (district, at);

CREATE TABLE incident_events (
    incident_id text        NOT NULL,
    revision    integer     NOT NULL,
    change      text        NOT NULL,
    at          timestamptz NOT NULL,
    district    text        NOT NULL,
    event       jsonb       NOT NULL,
    PRIMARY KEY (incident_id, revision)
);
CREATE INDEX incident_events_at ON incident_events (at);
