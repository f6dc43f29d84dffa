-- Bank accounts (corebank.md §1.3, §1.5, §5, §9), their tokens and a minimal ledger.
--
-- Conventions: amounts are two INTEGER columns, value (≤ 2^52) and fraction (units of 1e-8),
-- in the account's single `currency`; booleans are 0/1; times are µs since the epoch.

-- AUTOINCREMENT: row ids (the listings' `row_id`) are never reused.
CREATE TABLE bank_accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    is_public INTEGER NOT NULL CHECK (is_public IN (0, 1)),
    is_taler_exchange INTEGER NOT NULL CHECK (is_taler_exchange IN (0, 1)),
    email TEXT,
    phone TEXT,
    -- Full form, with receiver-name.
    cashout_payto TEXT,
    -- Canonical payto (payto://iban/… or payto://x-taler-bank/localhost/…): the uniqueness key.
    address TEXT NOT NULL UNIQUE,
    currency TEXT NOT NULL CHECK (length(currency) BETWEEN 1 AND 11),
    balance_value INTEGER NOT NULL CHECK (balance_value BETWEEN 0 AND 4503599627370496),
    balance_fraction INTEGER NOT NULL CHECK (balance_fraction BETWEEN 0 AND 99999999),
    has_debt INTEGER NOT NULL CHECK (has_debt IN (0, 1)),
    max_debt_value INTEGER NOT NULL CHECK (max_debt_value BETWEEN 0 AND 4503599627370496),
    max_debt_fraction INTEGER NOT NULL CHECK (max_debt_fraction BETWEEN 0 AND 99999999),
    min_cashout_value INTEGER CHECK (min_cashout_value BETWEEN 0 AND 4503599627370496),
    min_cashout_fraction INTEGER CHECK (min_cashout_fraction BETWEEN 0 AND 99999999),
    -- Comma-separated channel names in order ("sms,email"); '' = no 2FA.
    tan_channels TEXT NOT NULL,
    created_at INTEGER NOT NULL CHECK (created_at >= 0),
    -- Soft delete (§9): set once, the row stays forever.
    deleted_at INTEGER CHECK (deleted_at >= 0),
    CHECK ((min_cashout_value IS NULL) = (min_cashout_fraction IS NULL)),
    -- Zero is always credit.
    CHECK (has_debt = 0 OR balance_value > 0 OR balance_fraction > 0)
) STRICT;

-- GET /public-accounts pages through public, active accounts only.
CREATE INDEX bank_accounts_public ON bank_accounts (id)
    WHERE is_public = 1 AND deleted_at IS NULL;

-- Every IBAN ever assigned to an account; never deleted, so an IBAN is never reused (§5.3).
CREATE TABLE iban_history (
    iban TEXT PRIMARY KEY NOT NULL
) STRICT;

-- Transfers between accounts; for now only registration bonuses (subject "bonus", §5.5).
CREATE TABLE bank_transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    debtor_id INTEGER NOT NULL REFERENCES bank_accounts (id),
    creditor_id INTEGER NOT NULL REFERENCES bank_accounts (id),
    currency TEXT NOT NULL CHECK (length(currency) BETWEEN 1 AND 11),
    amount_value INTEGER NOT NULL CHECK (amount_value BETWEEN 0 AND 4503599627370496),
    amount_fraction INTEGER NOT NULL CHECK (amount_fraction BETWEEN 0 AND 99999999),
    subject TEXT NOT NULL,
    created_at INTEGER NOT NULL CHECK (created_at >= 0),
    CHECK (debtor_id <> creditor_id)
) STRICT;

CREATE INDEX bank_transactions_debtor ON bank_transactions (debtor_id, id);
CREATE INDEX bank_transactions_creditor ON bank_transactions (creditor_id, id);

-- Bearer tokens, by the SHA-256 of the raw token (the raw token is never stored).
CREATE TABLE bank_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL CHECK (length(token_hash) = 32),
    account_id INTEGER NOT NULL REFERENCES bank_accounts (id) ON DELETE CASCADE,
    -- Validated when read, so a new scope needs no table rebuild.
    scope TEXT NOT NULL,
    refreshable INTEGER NOT NULL CHECK (refreshable IN (0, 1)),
    created_at INTEGER NOT NULL CHECK (created_at >= 0),
    -- NULL = never (Timestamp u64::MAX does not fit SQLite's signed INTEGER).
    expires_at INTEGER CHECK (expires_at >= 0),
    description TEXT
) STRICT, WITHOUT ROWID;

CREATE INDEX bank_tokens_account ON bank_tokens (account_id);
