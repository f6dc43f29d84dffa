-- AML officers, KYC attribute rows and decisions (exchange-aml.md §5, §7; exchange-kyc.md §2.3).
--
-- Stands alone: it references no table of another migration, so it applies whatever comes
-- before it. Conventions as in 0002: booleans 0/1, times µs since the epoch, NULL expiry =
-- never, keys and hashes as raw bytes.

-- AML officers by public key; a status changes only to one with a later last_change.
CREATE TABLE aml_officers (
    officer_pub BLOB PRIMARY KEY NOT NULL CHECK (length(officer_pub) = 32),
    name TEXT NOT NULL,
    is_active INTEGER NOT NULL CHECK (is_active IN (0, 1)),
    read_only INTEGER NOT NULL CHECK (read_only IN (0, 1)),
    last_change INTEGER NOT NULL CHECK (last_change >= 0),
    -- Master signature (purpose 1017) of the status; NULL for statuses set by the operator CLI.
    master_sig BLOB CHECK (master_sig IS NULL OR length(master_sig) = 64)
) STRICT, WITHOUT ROWID;

-- Every KYC data collection of an account, encrypted (taler-primitives.md §9); append-only.
-- AUTOINCREMENT: serial is the officers' `rowid`, global and never reused.
CREATE TABLE kyc_attributes (
    serial INTEGER PRIMARY KEY AUTOINCREMENT,
    h_payto BLOB NOT NULL CHECK (length(h_payto) = 32),
    -- The KYC legitimization process that collected the data (its table belongs to the KYC
    -- migration, hence no foreign key); NULL for officer-filed rows.
    process_serial INTEGER CHECK (process_serial >= 0),
    form_id TEXT,
    collection_time INTEGER NOT NULL CHECK (collection_time >= 0),
    expiration_time INTEGER CHECK (expiration_time >= 0),
    encrypted_attributes BLOB NOT NULL,
    by_aml_officer INTEGER NOT NULL CHECK (by_aml_officer IN (0, 1)),
    officer_pub BLOB CHECK (officer_pub IS NULL OR length(officer_pub) = 32),
    -- The provider (`FORM` for uploads) of customer rows.
    provider_name TEXT,
    CHECK ((by_aml_officer = 1) = (officer_pub IS NOT NULL))
) STRICT;

CREATE INDEX kyc_attributes_account ON kyc_attributes (h_payto, serial);

-- Decisions about accounts, by AML programs or officers; at most one active per account, and
-- no row means the default rules.
CREATE TABLE legitimization_outcomes (
    serial INTEGER PRIMARY KEY AUTOINCREMENT,
    h_payto BLOB NOT NULL CHECK (length(h_payto) = 32),
    decision_time INTEGER NOT NULL CHECK (decision_time >= 0),
    expiration_time INTEGER CHECK (expiration_time >= 0),
    -- JSON object.
    jproperties TEXT,
    new_measure_name TEXT,
    to_investigate INTEGER NOT NULL CHECK (to_investigate IN (0, 1)),
    is_active INTEGER NOT NULL CHECK (is_active IN (0, 1)),
    -- LegitimizationRuleSet (JSON); NULL = the default rules.
    jnew_rules TEXT
) STRICT;

CREATE UNIQUE INDEX legitimization_outcomes_active ON legitimization_outcomes (h_payto)
    WHERE is_active = 1;
CREATE INDEX legitimization_outcomes_account ON legitimization_outcomes (h_payto, serial);

-- The officer behind a decision (program outcomes have no row here).
CREATE TABLE aml_history (
    outcome_serial INTEGER PRIMARY KEY REFERENCES legitimization_outcomes (serial),
    justification TEXT NOT NULL,
    decider_pub BLOB NOT NULL CHECK (length(decider_pub) = 32),
    decider_sig BLOB NOT NULL CHECK (length(decider_sig) = 64)
) STRICT;
