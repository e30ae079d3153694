-- The event log: one row per change to a user, written in the change's own
-- transaction, so that an event exists if and only if its change committed.
-- Webhook deliveries, GET /events and the live stream all read it.
--
-- Ids are not taken from a sequence. A sequence hands out ids when rows are
-- inserted, and transactions commit in another order: a reader that has
-- seen 43 could see 42 appear later, and a reader paging by id would skip
-- it for ever. An id is instead the writing transaction's id (64 bits,
-- never wrapping) shifted left by 16 bits, plus the event's place in its
-- transaction. Readers see only the events of transactions below the xmin
-- of their snapshot (every transaction below it has ended), so what a
-- reader sees only ever grows at the end: no event can appear below an id
-- already shown (see EventsAfter). Ids stay below 2^53, exact in
-- JavaScript, for the first 2^37 transactions.
CREATE TABLE events (
    id          bigint      PRIMARY KEY,
    type        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    user_id     bigint      NOT NULL,
    -- The user after the change; for a deletion, as it last was.
    data        jsonb       NOT NULL,
    -- The fields an update changed; NULL for other types.
    changed     text[]
);

CREATE INDEX events_user_id_idx ON events (user_id, id);
CREATE INDEX events_occurred_at_idx ON events (occurred_at);

-- event_horizon is the lowest id a transaction still in flight could
-- write: that of the oldest one running (the xmin of the current snapshot).
-- Readers see only events below it (store.Events.After).
CREATE FUNCTION event_horizon() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 16
$$;

-- Where the log starts: every event up to trimmed_upto has been deleted
-- by the retention job, so a reader behind it has missed some (410).
CREATE TABLE event_log (
    trimmed_upto bigint NOT NULL DEFAULT 0,
    one_row      boolean PRIMARY KEY DEFAULT true CHECK (one_row)
);
INSERT INTO event_log DEFAULT VALUES;
