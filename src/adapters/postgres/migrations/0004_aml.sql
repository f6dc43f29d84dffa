-- AML officers, KYC attribute rows and decisions (exchange-aml.md §5, §7; exchange-kyc.md §2.3).
-- PostgreSQL form of SQLite migration 0004: the same tables and columns (the parity test
-- compares them); INTEGER becomes BIGINT, 0/1 flags BOOLEAN, BLOB BYTEA.
CREATE TABLE aml_officers (
    officer_pub BYTEA PRIMARY KEY CHECK (octet_length(officer_pub) = 32),
    name TEXT NOT NULL,
    is_active BOOLEAN NOT NULL,
    read_only BOOLEAN NOT NULL,
    last_change BIGINT NOT NULL CHECK (last_change >= 0),
    master_sig BYTEA CHECK (master_sig IS NULL OR octet_length(master_sig) = 64)
);
CREATE TABLE kyc_attributes (
    serial BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    h_payto BYTEA NOT NULL CHECK (octet_length(h_payto) = 32),
    process_serial BIGINT CHECK (process_serial >= 0),
    form_id TEXT,
    collection_time BIGINT NOT NULL CHECK (collection_time >= 0),
    expiration_time BIGINT CHECK (expiration_time >= 0),
    encrypted_attributes BYTEA NOT NULL,
    by_aml_officer BOOLEAN NOT NULL,
    officer_pub BYTEA CHECK (officer_pub IS NULL OR octet_length(officer_pub) = 32),
    provider_name TEXT,
    CHECK (by_aml_officer = (officer_pub IS NOT NULL))
);
CREATE INDEX kyc_attributes_account ON kyc_attributes (h_payto, serial);
CREATE TABLE legitimization_outcomes (
    serial BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    h_payto BYTEA NOT NULL CHECK (octet_length(h_payto) = 32),
    decision_time BIGINT NOT NULL CHECK (decision_time >= 0),
    expiration_time BIGINT CHECK (expiration_time >= 0),
    jproperties TEXT,
    new_measure_name TEXT,
    to_investigate BOOLEAN NOT NULL,
    is_active BOOLEAN NOT NULL,
    jnew_rules TEXT
);
CREATE UNIQUE INDEX legitimization_outcomes_active ON legitimization_outcomes (h_payto) WHERE is_active;
CREATE INDEX legitimization_outcomes_account ON legitimization_outcomes (h_payto, serial);
CREATE TABLE aml_history (
    outcome_serial BIGINT PRIMARY KEY REFERENCES legitimization_outcomes (serial),
    justification TEXT NOT NULL,
    decider_pub BYTEA NOT NULL CHECK (octet_length(decider_pub) = 32),
    decider_sig BYTEA NOT NULL CHECK (octet_length(decider_sig) = 64)
);
