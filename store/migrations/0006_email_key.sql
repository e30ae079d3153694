-- Emails are unique by their key (see package email: width folding, NFC,
-- Unicode case folding, and the domain's IDNA ASCII form), which the service
-- computes on every write; email keeps the address as the user typed it.
ALTER TABLE users ADD COLUMN email_key text;

-- Existing rows get the nearest key SQL can compute, lower(NFKC(email)):
-- exactly the key for ASCII addresses; a non-ASCII one gets its exact key
-- when its email next changes. Where two rows now share a key, the oldest
-- keeps it and the others get none (NULL): they are kept and shown as
-- before, nothing is merged or deleted, but they hold no claim on the
-- address and the email filter does not find them until their email is
-- changed. This way the migration cannot fail on data the old rule allowed.
UPDATE users
SET email_key = k.email_key
FROM (
    SELECT id, lower(normalize(email, NFKC)) AS email_key,
           row_number() OVER (PARTITION BY lower(normalize(email, NFKC)) ORDER BY id) AS n
    FROM users
) k
WHERE users.id = k.id AND k.n = 1;

CREATE UNIQUE INDEX users_email_key ON users (email_key);
-- The key's index enforces a stricter rule than this one did.
DROP INDEX users_email_lower_key;
