-- Fare taps, for the transit KPIs (boardings per station, line and area; metro origin–destination flows).
-- No card id and not its HMAC either: ``rider`` is a keyed hash of the card's HMAC and the tap's service
-- day, so it links a card's taps within one day (an entry to its exit) and never across days.
-- Keyed by the tap's station and id at the source, as the ingest edge deduplicates: a replay writes once.

CREATE TABLE transit_taps (
    station_id text        NOT NULL,
    event_id   text        NOT NULL,
    at         timestamptz NOT NULL,  -- event time of the tap
    mode       text        NOT NULL,  -- metro, brt, bus
    line       text        NOT NULL,
    direction  text        NOT NULL,  -- ENTRY, EXIT, BOARD
    rider      text        NOT NULL,
    PRIMARY KEY (station_id, event_id)
);
CREATE INDEX transit_taps_at ON transit_taps (at);
