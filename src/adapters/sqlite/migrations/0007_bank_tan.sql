-- Bank TAN challenges (corebank-tan.md §3.4, §12). Times are µs since the epoch.
-- The request body is never stored, only its keyed hash, erased once the challenge is used
-- or dead. `op`, `role` and `channel` hold the wire names.

CREATE TABLE tan_challenges (
    id BLOB PRIMARY KEY CHECK (length(id) = 16),
    account_id INTEGER NOT NULL REFERENCES bank_accounts (id) ON DELETE CASCADE,
    op TEXT NOT NULL CHECK (op IN ('account_reconfig', 'account_auth_reconfig',
        'account_delete', 'token_create')),
    role TEXT NOT NULL CHECK (role IN ('auth', 'address')),
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    address TEXT NOT NULL,
    body_salt BLOB NOT NULL CHECK (length(body_salt) = 16),
    body_hash BLOB CHECK (length(body_hash) = 32),
    code TEXT,
    code_expires_at INTEGER,
    attempts_left INTEGER NOT NULL CHECK (attempts_left >= 0),
    next_send_at INTEGER,
    created_at INTEGER NOT NULL CHECK (created_at >= 0),
    solved_at INTEGER,
    used_at INTEGER,
    invalidated_at INTEGER,
    CHECK ((code IS NULL) = (code_expires_at IS NULL))
) STRICT;

CREATE INDEX tan_challenges_account ON tan_challenges (account_id);
