-- userapi:no-transaction
-- A user's lifecycle: active, suspended, or deleted (kept, hidden, its
-- email still reserved) until it is purged. Each statement is safe to run
-- again, as a migration without a transaction must be.

-- A constant default adds the column without rewriting the table.
ALTER TABLE users ADD COLUMN IF NOT EXISTS state text NOT NULL DEFAULT 'active';
ALTER TABLE users ADD COLUMN IF NOT EXISTS deleted_at timestamptz;

-- Checked apart from the ALTER that adds them (NOT VALID, then VALIDATE),
-- so that the scan of existing rows does not hold the table's exclusive lock.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_state_check;
ALTER TABLE users ADD CONSTRAINT users_state_check
    CHECK (state IN ('active', 'suspended', 'deleted')) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_state_check;
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_deleted_at_check;
ALTER TABLE users ADD CONSTRAINT users_deleted_at_check
    CHECK ((state = 'deleted') = (deleted_at IS NOT NULL)) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_deleted_at_check;

-- The purge job's walk over the users deleted longest ago. Lists need no
-- new index: they hide deleted users with a filter on the order's index,
-- and deleted users are few.
DROP INDEX CONCURRENTLY IF EXISTS users_deleted_at;
CREATE INDEX CONCURRENTLY users_deleted_at ON users (deleted_at) WHERE deleted_at IS NOT NULL;

-- Erasure keeps a purged user's events (id, type, user id) without the
-- personal data they carried.
ALTER TABLE events ALTER COLUMN data DROP NOT NULL;

-- Erasure finds the delivery records of a user's events by event id.
DROP INDEX CONCURRENTLY IF EXISTS webhook_deliveries_event_id;
CREATE INDEX CONCURRENTLY webhook_deliveries_event_id ON webhook_deliveries (event_id);
