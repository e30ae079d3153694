-- Cache invalidations, recorded by triggers in the transaction of each change
-- to a cached row, so that a change commits if and only if its invalidation
-- is recorded. Every instance deletes the Redis keys named here that it has
-- not applied yet (polling, and woken by a NOTIFY from a writer that could
-- not reach Redis itself), and deletes all those of
-- the last cache TTL after losing Redis: an instance that could not reach
-- Redis when it wrote, or a Redis restarted from its persisted data, can no
-- longer leave an old entry in place.
CREATE TABLE cache_invalidations (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The recording transaction's id (top level, 64 bits: it never wraps).
    -- Readers compare it with their snapshot's xmin, not the id: ids are
    -- taken in one order and committed in another.
    tx         bigint      NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
    -- The Redis key without the deployment's prefix, such as user:42.
    key        text        NOT NULL,
    -- The row's version after the change, when it has one: an entry
    -- holding this version or a later one is not old, and stays. NULL
    -- deletes whatever the key holds.
    version    bigint,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX cache_invalidations_tx_idx ON cache_invalidations (tx);
CREATE INDEX cache_invalidations_created_at_idx ON cache_invalidations (created_at);

-- record_cache_invalidation records the key TG_ARGV[0] || the row's column
-- TG_ARGV[1], with the new row's version column TG_ARGV[2] if named. It
-- sends no NOTIFY: PostgreSQL commits notifying transactions one at a time,
-- which would cap every write at one commit per disk flush. A writer that
-- reached Redis has invalidated every instance already; one that did not
-- notifies on its own (store.InvalidationLog.Notify).
CREATE FUNCTION record_cache_invalidation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
    version bigint;
BEGIN
    IF TG_OP <> 'DELETE' AND TG_NARGS > 2 THEN
        version := (changed ->> TG_ARGV[2])::bigint;
    END IF;
    INSERT INTO cache_invalidations (key, version) VALUES (TG_ARGV[0] || (changed ->> TG_ARGV[1]), version);
    RETURN NULL;
END
$$;

-- Users: every change but the background profile data, which no cache holds
-- (see 0002).
CREATE TRIGGER users_cache_invalidation AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION record_cache_invalidation('user:', 'id', 'version');
CREATE TRIGGER users_cache_invalidation_update AFTER UPDATE ON users
    FOR EACH ROW
    WHEN (to_jsonb(OLD) - '{email_normalized,profile_score,profile_computed_at}'::text[]
          IS DISTINCT FROM to_jsonb(NEW) - '{email_normalized,profile_score,profile_computed_at}'::text[])
    EXECUTE FUNCTION record_cache_invalidation('user:', 'id', 'version');

-- API keys: creation (an instance may remember the prefix as unknown),
-- revocation and any other change but the last-used time.
CREATE TRIGGER api_keys_cache_invalidation AFTER INSERT OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION record_cache_invalidation('apikey:', 'prefix');
CREATE TRIGGER api_keys_cache_invalidation_update AFTER UPDATE ON api_keys
    FOR EACH ROW
    WHEN (to_jsonb(OLD) - 'last_used_at' IS DISTINCT FROM to_jsonb(NEW) - 'last_used_at')
    EXECUTE FUNCTION record_cache_invalidation('apikey:', 'prefix');
