-- Challenger (challenger.md §11): OAuth clients, validations (one per nonce) and grants (one
-- PostgreSQL form of SQLite migration 0003: the same tables and columns (the parity test
-- compares them); INTEGER becomes BIGINT, 0/1 flags BOOLEAN, BLOB BYTEA.
CREATE TABLE challenger_clients (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    secret_hash BYTEA NOT NULL CHECK (octet_length(secret_hash) = 32),
    validation_counter BIGINT NOT NULL DEFAULT 0 CHECK (validation_counter >= 0)
);
CREATE TABLE challenger_validations (
    nonce BYTEA PRIMARY KEY CHECK (octet_length(nonce) = 32),
    instance TEXT NOT NULL,
    client_id BIGINT NOT NULL REFERENCES challenger_clients (id) ON DELETE CASCADE,
    version BIGINT NOT NULL CHECK (version >= 0),
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    fix_address BOOLEAN NOT NULL,
    address TEXT,
    changes_left BIGINT NOT NULL CHECK (changes_left >= 0),
    pin TEXT,
    pin_transmissions_left BIGINT NOT NULL CHECK (pin_transmissions_left >= 0),
    auth_attempts_left BIGINT NOT NULL CHECK (auth_attempts_left >= 0),
    last_tx_time BIGINT,
    retransmission_time BIGINT,
    oauth_state TEXT,
    scope TEXT,
    redirect_uri TEXT,
    code_challenge TEXT,
    code_method TEXT CHECK (code_method IN ('S256', 'plain')),
    solved_at BIGINT,
    code_hash BYTEA UNIQUE CHECK (octet_length(code_hash) = 32),
    code_expires BIGINT,
    code_used BOOLEAN NOT NULL,
    CHECK ((code_challenge IS NULL) = (code_method IS NULL))
);
CREATE INDEX challenger_validations_client ON challenger_validations (client_id);
CREATE INDEX challenger_validations_expiry ON challenger_validations (instance, expires_at);
CREATE TABLE challenger_grants (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    nonce BYTEA NOT NULL REFERENCES challenger_validations (nonce) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL CHECK (octet_length(code_hash) = 32),
    address TEXT NOT NULL,
    address_type TEXT NOT NULL,
    address_expires BIGINT,
    token_expires BIGINT
);
CREATE INDEX challenger_grants_nonce ON challenger_grants (nonce);
CREATE INDEX challenger_grants_code ON challenger_grants (code_hash);
CREATE INDEX challenger_grants_expiry ON challenger_grants (instance, token_expires);
