-- Challenger (challenger.md §11): OAuth clients, validations (one per nonce) and grants (one
-- per redeemed authorization code) of every challenger instance. `instance` is the
-- configuration section: 'challenger' or 'challenger-NAME'; an instance sees only its rows.
--
-- Conventions: times are µs since the epoch, NULL where the time is "never"; booleans 0/1;
-- secrets (client secrets, codes, tokens) are stored as SHA-256 hashes only.

-- AUTOINCREMENT: client ids are printed to operators and never reused.
CREATE TABLE challenger_clients (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
    validation_counter INTEGER NOT NULL DEFAULT 0 CHECK (validation_counter >= 0)
) STRICT;

CREATE TABLE challenger_validations (
    nonce BLOB PRIMARY KEY NOT NULL CHECK (length(nonce) = 32),
    instance TEXT NOT NULL,
    client_id INTEGER NOT NULL REFERENCES challenger_clients (id) ON DELETE CASCADE,
    -- Bumped by every change: updates are compare-and-swap on it.
    version INTEGER NOT NULL CHECK (version >= 0),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    fix_address INTEGER NOT NULL CHECK (fix_address IN (0, 1)),
    -- JSON object of the address fields.
    address TEXT,
    changes_left INTEGER NOT NULL CHECK (changes_left >= 0),
    -- Kept until solved, since a re-send repeats it.
    pin TEXT,
    pin_transmissions_left INTEGER NOT NULL CHECK (pin_transmissions_left >= 0),
    auth_attempts_left INTEGER NOT NULL CHECK (auth_attempts_left >= 0),
    last_tx_time INTEGER,
    retransmission_time INTEGER,
    oauth_state TEXT,
    scope TEXT,
    redirect_uri TEXT,
    code_challenge TEXT,
    code_method TEXT CHECK (code_method IN ('S256', 'plain')),
    solved_at INTEGER,
    code_hash BLOB UNIQUE CHECK (length(code_hash) = 32),
    code_expires INTEGER,
    code_used INTEGER NOT NULL CHECK (code_used IN (0, 1)),
    CHECK ((code_challenge IS NULL) = (code_method IS NULL))
) STRICT;

CREATE INDEX challenger_validations_client ON challenger_validations (client_id);
CREATE INDEX challenger_validations_expiry ON challenger_validations (instance, expires_at);

CREATE TABLE challenger_grants (
    -- The `id` of /info.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    nonce BLOB NOT NULL REFERENCES challenger_validations (nonce) ON DELETE CASCADE,
    -- The code it was redeemed with, to revoke it when that code is replayed.
    code_hash BLOB NOT NULL CHECK (length(code_hash) = 32),
    address TEXT NOT NULL,
    address_type TEXT NOT NULL,
    address_expires INTEGER,
    token_expires INTEGER
) STRICT;

CREATE INDEX challenger_grants_nonce ON challenger_grants (nonce);
CREATE INDEX challenger_grants_code ON challenger_grants (code_hash);
CREATE INDEX challenger_grants_expiry ON challenger_grants (instance, token_expires);
