-- Webhook subscriptions. The secret signs every delivery; it is kept as
-- given because signing needs it.
CREATE TABLE webhooks (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url        text        NOT NULL CHECK (char_length(url) BETWEEN 8 AND 2048),
    events     text[]      NOT NULL CHECK (cardinality(events) > 0),
    secret     text        NOT NULL CHECK (char_length(secret) BETWEEN 16 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Each user write looks up the subscribers of its event type.
CREATE INDEX webhooks_events_idx ON webhooks USING gin (events);

-- One row per delivery attempt, kept for the subscriber to inspect.
CREATE TABLE webhook_deliveries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id   bigint           NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id     text             NOT NULL,
    event_type   text             NOT NULL,
    attempt      integer          NOT NULL,
    status_code  integer,
    latency_ms   double precision NOT NULL,
    error        text,
    delivered_at timestamptz      NOT NULL DEFAULT now()
);

CREATE INDEX webhook_deliveries_webhook_id_idx ON webhook_deliveries (webhook_id, id DESC);
