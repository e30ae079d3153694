-- Derived profile data, recomputed in the background by the process-user
-- job. NULL until the first run. These columns are not part of the user's
-- version: recomputing them changes no ETag and invalidates no cache entry.
ALTER TABLE users
    ADD COLUMN email_normalized    text,
    ADD COLUMN profile_score       smallint CHECK (profile_score BETWEEN 0 AND 100),
    ADD COLUMN profile_computed_at timestamptz;
