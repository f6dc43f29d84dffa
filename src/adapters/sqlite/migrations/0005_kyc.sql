-- The exchange's KYC process (exchange-kyc spec §2.3). Serials are AUTOINCREMENT: they are
-- embedded in requirement ids and ETags, so they must never be reused.

-- One row per normalized payto; the access token is stored raw (kyc-start recomputes
-- measure hashes from it).
CREATE TABLE kyc_accounts (
    h_payto BLOB PRIMARY KEY NOT NULL CHECK (length(h_payto) = 32),
    normalized_payto TEXT NOT NULL,
    full_payto TEXT,
    access_token BLOB NOT NULL UNIQUE CHECK (length(access_token) = 32),
    account_pub BLOB CHECK (account_pub IS NULL OR length(account_pub) = 32),
    created INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Measure sets; at most one open (not finished) per account.
CREATE TABLE legitimization_measures (
    serial INTEGER PRIMARY KEY AUTOINCREMENT,
    h_payto BLOB NOT NULL REFERENCES kyc_accounts (h_payto),
    start_time INTEGER NOT NULL,
    jmeasures TEXT NOT NULL,
    display_priority INTEGER NOT NULL DEFAULT 0,
    is_finished INTEGER NOT NULL DEFAULT 0 CHECK (is_finished IN (0, 1))
) STRICT;
CREATE UNIQUE INDEX legitimization_measures_one_open
    ON legitimization_measures (h_payto) WHERE is_finished = 0;

-- Attempts at one measure of a set; `provider` is `FORM` for uploads.
CREATE TABLE legitimization_processes (
    serial INTEGER PRIMARY KEY AUTOINCREMENT,
    h_payto BLOB NOT NULL REFERENCES kyc_accounts (h_payto),
    measure_serial INTEGER NOT NULL REFERENCES legitimization_measures (serial),
    measure_index INTEGER NOT NULL CHECK (measure_index >= 0),
    provider TEXT NOT NULL,
    provider_user_id TEXT,
    provider_legitimization_id TEXT,
    redirect_url TEXT,
    start_time INTEGER NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0 CHECK (finished IN (0, 1)),
    error_code INTEGER NOT NULL DEFAULT 0,
    error_message TEXT,
    UNIQUE (measure_serial, measure_index)
) STRICT;
CREATE INDEX legitimization_processes_by_account
    ON legitimization_processes (h_payto, provider, finished);

-- Moves on every KYC change, so long polls in the server notice changes made by other
-- processes (the admin CLI).
INSERT INTO talerbox_meta (name, value) VALUES ('kyc_changes', '0');
