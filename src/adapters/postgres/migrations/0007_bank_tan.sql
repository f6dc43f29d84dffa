-- Bank TAN challenges (corebank-tan.md §3.4, §12). Times are µs since the epoch.
-- PostgreSQL form of SQLite migration 0007.
CREATE TABLE tan_challenges (
    id BYTEA PRIMARY KEY CHECK (octet_length(id) = 16),
    account_id BIGINT NOT NULL REFERENCES bank_accounts (id) ON DELETE CASCADE,
    op TEXT NOT NULL CHECK (op IN ('account_reconfig', 'account_auth_reconfig',
        'account_delete', 'token_create')),
    role TEXT NOT NULL CHECK (role IN ('auth', 'address')),
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    address TEXT NOT NULL,
    body_salt BYTEA NOT NULL CHECK (octet_length(body_salt) = 16),
    body_hash BYTEA CHECK (octet_length(body_hash) = 32),
    code TEXT,
    code_expires_at BIGINT,
    attempts_left BIGINT NOT NULL CHECK (attempts_left >= 0),
    next_send_at BIGINT,
    created_at BIGINT NOT NULL CHECK (created_at >= 0),
    solved_at BIGINT,
    used_at BIGINT,
    invalidated_at BIGINT,
    CHECK ((code IS NULL) = (code_expires_at IS NULL))
);
CREATE INDEX tan_challenges_account ON tan_challenges (account_id);
