-- Compliance evidence: the append-only, hash-chained journal (compliance-evidence.md §1)
-- and retention with legal holds (§4).
-- The first entry (`journal.started`) is appended by the binary right after this migration,
-- since its hash needs SHA-512.
CREATE TABLE compliance_journal (
  serial   INTEGER PRIMARY KEY AUTOINCREMENT,
  at_us    INTEGER NOT NULL,
  kind     TEXT    NOT NULL CHECK (kind IN (
             'kyc.requirement_opened', 'kyc.process_started', 'kyc.attributes_stored',
             'kyc.program_outcome', 'aml.decision', 'aml.attributes_read',
             'aml.decisions_read', 'aml.journal_read', 'aml.officer_changed',
             'retention.purged', 'retention.hold', 'keys.attribute_key_adopted',
             'journal.checkpoint', 'journal.started')),
  actor    TEXT    NOT NULL,
  h_payto  BLOB    NULL CHECK (h_payto IS NULL OR length(h_payto) = 32),
  details  TEXT    NOT NULL,
  prev     BLOB    NOT NULL CHECK (length(prev) = 64),
  hash     BLOB    NOT NULL CHECK (length(hash) = 64)
);
CREATE INDEX compliance_journal_by_account ON compliance_journal (h_payto, serial);

-- Nothing in the journal can be changed or removed through talerbox.
CREATE TRIGGER compliance_journal_no_update BEFORE UPDATE ON compliance_journal
BEGIN
  SELECT RAISE(ABORT, 'the compliance journal is append-only');
END;
CREATE TRIGGER compliance_journal_no_delete BEFORE DELETE ON compliance_journal
BEGIN
  SELECT RAISE(ABORT, 'the compliance journal is append-only');
END;

-- Retention (compliance-evidence.md §4): a purged attribute row keeps its serial, times and
-- source; its encrypted blob is emptied and the time of the purge recorded.
ALTER TABLE kyc_attributes ADD COLUMN purged_at INTEGER CHECK (purged_at >= 0);

-- Legal holds: while an account has one, none of its rows is purged. The reason stays here;
-- the journal keeps only its hash.
CREATE TABLE retention_holds (
    h_payto BLOB PRIMARY KEY CHECK (length(h_payto) = 32),
    reason TEXT NOT NULL,
    since INTEGER NOT NULL CHECK (since >= 0)
) STRICT;
