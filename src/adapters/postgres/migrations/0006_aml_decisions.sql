-- Officer decisions, statistics events and account paging (exchange-aml-decisions.md §1, §11).
-- PostgreSQL form of SQLite migration 0006.
ALTER TABLE aml_history ADD COLUMN h_payto BYTEA CHECK (h_payto IS NULL OR octet_length(h_payto) = 32);
ALTER TABLE aml_history ADD COLUMN new_measures TEXT;
UPDATE aml_history SET h_payto =
    (SELECT o.h_payto FROM legitimization_outcomes o WHERE o.serial = aml_history.outcome_serial);
CREATE UNIQUE INDEX aml_history_signature ON aml_history (h_payto, decider_sig);

CREATE TABLE kyc_events (
    serial BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_type TEXT NOT NULL,
    event_timestamp BIGINT NOT NULL,
    outcome_serial BIGINT
);
CREATE INDEX kyc_events_by_type ON kyc_events (event_type, event_timestamp);

-- A stable paging key for the accounts listing: the largest plus one, handed out under the
-- account-creation lock.
ALTER TABLE kyc_accounts ADD COLUMN serial BIGINT;
UPDATE kyc_accounts SET serial = (
    SELECT COUNT(*) FROM kyc_accounts a
    WHERE a.created < kyc_accounts.created
       OR (a.created = kyc_accounts.created AND a.h_payto <= kyc_accounts.h_payto));
CREATE UNIQUE INDEX kyc_accounts_serial ON kyc_accounts (serial);
