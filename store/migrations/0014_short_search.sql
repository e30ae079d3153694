-- userapi:no-transaction
-- An index for q of one or two characters, which has no trigram: without
-- it such a search walks the order's index and filters, which is quick for
-- a frequent fragment but reads the whole table for a rare one.

-- userapi_grams is a code for every distinct substring of s's strings
-- whose length in characters (not bytes) is one of sizes (1 or 2): the low
-- 16 bits of the first character's code point, then of the second's (0, no
-- character, for one), as an int4. Four bytes per substring instead of a
-- text element's eight keep the stored column half as large. Characters
-- from different Unicode planes may share a code, so a code matches a
-- superset of the substrings; the search's pattern is the exact test. It is
-- PL/pgSQL, whose plan a session keeps, rather than SQL, whose subquery
-- would be planned again for every INSERT or UPDATE: that took a
-- millisecond per write.
CREATE OR REPLACE FUNCTION userapi_grams(s text[], sizes int[]) RETURNS int[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
BEGIN
    RETURN array(
        SELECT DISTINCT ((ascii(substr(x, i, 1)) % 65536) * 65536::bigint
                         + CASE n WHEN 2 THEN ascii(substr(x, i + 1, 1)) % 65536 ELSE 0 END
                         - 2147483648)::int
        FROM unnest(s) x, unnest(sizes) n, generate_series(1, char_length(x) - n + 1) i);
END
$$;

-- Each user's one- and two-character substrings of the folded name and
-- email, stored: a search that walks an order's index tests it on every row
-- it passes, and computing it there would cost more than the search. (A
-- generated column cannot use name_fold and email_fold, hence the folding
-- again.) Adding it rewrites the table once, under an ACCESS EXCLUSIVE lock.
ALTER TABLE users ADD COLUMN IF NOT EXISTS short_grams int[]
    GENERATED ALWAYS AS (userapi_grams(ARRAY[userapi_fold(name), userapi_fold(email)], '{1,2}')) STORED;

-- Built CONCURRENTLY, dropped first in case an earlier build failed; like
-- the trigram indexes (0013), it takes each write straight into its tree.
DROP INDEX CONCURRENTLY IF EXISTS users_short_grams;
CREATE INDEX CONCURRENTLY users_short_grams ON users USING gin (short_grams) WITH (fastupdate = off);
