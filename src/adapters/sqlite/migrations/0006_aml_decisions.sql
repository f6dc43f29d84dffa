-- Officer decisions, statistics events and account paging (exchange-aml-decisions.md §1, §11).

-- The account of each decision, and the measures it asked for, so that a replayed decision
-- (same account, same signature) is recognised and every decision can be re-verified.
ALTER TABLE aml_history ADD COLUMN h_payto BLOB CHECK (h_payto IS NULL OR length(h_payto) = 32);
ALTER TABLE aml_history ADD COLUMN new_measures TEXT;
UPDATE aml_history SET h_payto =
    (SELECT o.h_payto FROM legitimization_outcomes o WHERE o.serial = aml_history.outcome_serial);
CREATE UNIQUE INDEX aml_history_signature ON aml_history (h_payto, decider_sig);

-- Events counted by kyc-statistics, at the time of the decision or outcome that named them.
CREATE TABLE kyc_events (
    serial INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type TEXT NOT NULL,
    event_timestamp INTEGER NOT NULL,
    outcome_serial INTEGER
) STRICT;
CREATE INDEX kyc_events_by_type ON kyc_events (event_type, event_timestamp);

-- A stable paging key for the accounts listing (rowids may change on VACUUM; accounts are
-- never deleted, so the next serial is the largest plus one).
ALTER TABLE kyc_accounts ADD COLUMN serial INTEGER;
UPDATE kyc_accounts SET serial = (
    SELECT COUNT(*) FROM kyc_accounts a
    WHERE a.created < kyc_accounts.created
       OR (a.created = kyc_accounts.created AND a.h_payto <= kyc_accounts.h_payto));
CREATE UNIQUE INDEX kyc_accounts_serial ON kyc_accounts (serial);
