-- userapi:no-transaction
-- Indexes for searching and sorting users (GET /users, GET /users/export).
-- They are built CONCURRENTLY, which cannot run in a transaction, so that a
-- large table keeps taking writes meanwhile. A build that fails leaves an
-- invalid index behind; each is dropped first so that the next start builds
-- it again.

-- pg_trgm and unaccent ship with PostgreSQL (contrib) and are trusted
-- extensions: a database owner may create them.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public;

-- userapi_fold is what search compares: lower case, accents removed.
-- unaccent() is only STABLE (its dictionary could be changed), so this
-- wrapper names the dictionary and declares itself IMMUTABLE, as an index
-- expression must be; changing the dictionary would call for a REINDEX.
CREATE OR REPLACE FUNCTION userapi_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$;

-- The folded name and email are stored beside the row: a search that walks
-- a sort's index and filters would otherwise fold every row it passes, twice
-- (most of a search's time). Adding them rewrites the table once.
ALTER TABLE users ADD COLUMN IF NOT EXISTS name_fold text GENERATED ALWAYS AS (userapi_fold(name)) STORED;
ALTER TABLE users ADD COLUMN IF NOT EXISTS email_fold text GENERATED ALWAYS AS (userapi_fold(email)) STORED;

-- q of three characters or more: trigram indexes find the substring.
DROP INDEX CONCURRENTLY IF EXISTS users_name_trgm;
CREATE INDEX CONCURRENTLY users_name_trgm ON users USING gin (name_fold gin_trgm_ops);
DROP INDEX CONCURRENTLY IF EXISTS users_email_trgm;
CREATE INDEX CONCURRENTLY users_email_trgm ON users USING gin (email_fold gin_trgm_ops);

-- One btree per sort key, with id as the tie-break, read forwards or
-- backwards; keyset pages start with a range condition on the pair.
DROP INDEX CONCURRENTLY IF EXISTS users_name_id;
CREATE INDEX CONCURRENTLY users_name_id ON users (name, id);
DROP INDEX CONCURRENTLY IF EXISTS users_email_id;
CREATE INDEX CONCURRENTLY users_email_id ON users (email, id);
DROP INDEX CONCURRENTLY IF EXISTS users_created_at_id;
CREATE INDEX CONCURRENTLY users_created_at_id ON users (created_at, id);
DROP INDEX CONCURRENTLY IF EXISTS users_updated_at_id;
CREATE INDEX CONCURRENTLY users_updated_at_id ON users (updated_at, id);
