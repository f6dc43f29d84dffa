-- Bank accounts (corebank.md §1.3, §1.5, §5, §9), their tokens and a minimal ledger.
-- PostgreSQL form of SQLite migration 0002: the same tables and columns (the parity test
-- compares them); INTEGER becomes BIGINT, 0/1 flags BOOLEAN, BLOB BYTEA.
CREATE TABLE bank_accounts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    is_public BOOLEAN NOT NULL,
    is_taler_exchange BOOLEAN NOT NULL,
    email TEXT,
    phone TEXT,
    cashout_payto TEXT,
    address TEXT NOT NULL UNIQUE,
    currency TEXT NOT NULL CHECK (length(currency) BETWEEN 1 AND 11),
    balance_value BIGINT NOT NULL CHECK (balance_value BETWEEN 0 AND 4503599627370496),
    balance_fraction BIGINT NOT NULL CHECK (balance_fraction BETWEEN 0 AND 99999999),
    has_debt BOOLEAN NOT NULL,
    max_debt_value BIGINT NOT NULL CHECK (max_debt_value BETWEEN 0 AND 4503599627370496),
    max_debt_fraction BIGINT NOT NULL CHECK (max_debt_fraction BETWEEN 0 AND 99999999),
    min_cashout_value BIGINT CHECK (min_cashout_value BETWEEN 0 AND 4503599627370496),
    min_cashout_fraction BIGINT CHECK (min_cashout_fraction BETWEEN 0 AND 99999999),
    tan_channels TEXT NOT NULL,
    created_at BIGINT NOT NULL CHECK (created_at >= 0),
    deleted_at BIGINT CHECK (deleted_at >= 0),
    CHECK ((min_cashout_value IS NULL) = (min_cashout_fraction IS NULL)),
    CHECK (NOT has_debt OR balance_value > 0 OR balance_fraction > 0)
);
CREATE INDEX bank_accounts_public ON bank_accounts (id) WHERE is_public AND deleted_at IS NULL;
CREATE TABLE iban_history (iban TEXT PRIMARY KEY);
CREATE TABLE bank_transactions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    debtor_id BIGINT NOT NULL REFERENCES bank_accounts (id),
    creditor_id BIGINT NOT NULL REFERENCES bank_accounts (id),
    currency TEXT NOT NULL CHECK (length(currency) BETWEEN 1 AND 11),
    amount_value BIGINT NOT NULL CHECK (amount_value BETWEEN 0 AND 4503599627370496),
    amount_fraction BIGINT NOT NULL CHECK (amount_fraction BETWEEN 0 AND 99999999),
    subject TEXT NOT NULL,
    created_at BIGINT NOT NULL CHECK (created_at >= 0),
    CHECK (debtor_id <> creditor_id)
);
CREATE INDEX bank_transactions_debtor ON bank_transactions (debtor_id, id);
CREATE INDEX bank_transactions_creditor ON bank_transactions (creditor_id, id);
CREATE TABLE bank_tokens (
    token_hash BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    account_id BIGINT NOT NULL REFERENCES bank_accounts (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    refreshable BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL CHECK (created_at >= 0),
    expires_at BIGINT CHECK (expires_at >= 0),
    description TEXT
);
CREATE INDEX bank_tokens_account ON bank_tokens (account_id);
