-- The audit log: who changed what, and when. Each entry is written in the
-- transaction of the change it records, so an entry exists if and only if
-- its change committed. It never holds a secret (webhook secrets, keys,
-- tokens); its diffs hold personal data, which a purge removes (store/erase.go).
CREATE TABLE audit_log (
    id          bigserial   PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    -- The caller: an API key's prefix, sub:<subject> for an access token,
    -- cli for the operator's command line.
    actor       text        NOT NULL,
    -- The X-Request-ID of the request that made the change; empty outside
    -- a request.
    request_id  text        NOT NULL DEFAULT '',
    action      text        NOT NULL,
    -- What changed, as kind:id (user:42, webhook:7, key:uak_3kq7zt2m).
    target      text        NOT NULL,
    -- The fields the change replaced, and their new values; NULL when there
    -- were none (a creation has no before, a removal no after) or when they
    -- were erased.
    before      jsonb,
    after       jsonb
);

CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
CREATE INDEX audit_log_target_idx ON audit_log (target, id);
CREATE INDEX audit_log_occurred_at_idx ON audit_log (occurred_at);
