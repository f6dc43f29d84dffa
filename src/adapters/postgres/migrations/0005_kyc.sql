-- The exchange's KYC process (exchange-kyc spec §2.3). Serials are AUTOINCREMENT: they are
-- PostgreSQL form of SQLite migration 0005: the same tables and columns (the parity test
-- compares them); INTEGER becomes BIGINT, 0/1 flags BOOLEAN, BLOB BYTEA.
CREATE TABLE kyc_accounts (
    h_payto BYTEA PRIMARY KEY CHECK (octet_length(h_payto) = 32),
    normalized_payto TEXT NOT NULL,
    full_payto TEXT,
    access_token BYTEA NOT NULL UNIQUE CHECK (octet_length(access_token) = 32),
    account_pub BYTEA CHECK (account_pub IS NULL OR octet_length(account_pub) = 32),
    created BIGINT NOT NULL
);
CREATE TABLE legitimization_measures (
    serial BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    h_payto BYTEA NOT NULL REFERENCES kyc_accounts (h_payto),
    start_time BIGINT NOT NULL,
    jmeasures TEXT NOT NULL,
    display_priority BIGINT NOT NULL DEFAULT 0,
    is_finished BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX legitimization_measures_one_open ON legitimization_measures (h_payto)
    WHERE NOT is_finished;
CREATE TABLE legitimization_processes (
    serial BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    h_payto BYTEA NOT NULL REFERENCES kyc_accounts (h_payto),
    measure_serial BIGINT NOT NULL REFERENCES legitimization_measures (serial),
    measure_index BIGINT NOT NULL CHECK (measure_index >= 0),
    provider TEXT NOT NULL,
    provider_user_id TEXT,
    provider_legitimization_id TEXT,
    redirect_url TEXT,
    start_time BIGINT NOT NULL,
    finished BOOLEAN NOT NULL DEFAULT FALSE,
    error_code BIGINT NOT NULL DEFAULT 0,
    error_message TEXT,
    UNIQUE (measure_serial, measure_index)
);
CREATE INDEX legitimization_processes_by_account
    ON legitimization_processes (h_payto, provider, finished);
-- Moves after every committed KYC change (nextval after COMMIT; no row lock).
CREATE SEQUENCE kyc_changes;
