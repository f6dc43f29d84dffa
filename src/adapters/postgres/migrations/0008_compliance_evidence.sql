-- Compliance evidence: the append-only, hash-chained journal (compliance-evidence.md §1)
-- and retention with legal holds (§4). PostgreSQL form of SQLite migration 0008.
-- Serials are given by the appender (the newest plus one, under the journal lock), so the
-- chain has no gaps.
CREATE TABLE compliance_journal (
  serial   BIGINT  PRIMARY KEY,
  at_us    BIGINT  NOT NULL,
  kind     TEXT    NOT NULL CHECK (kind IN (
             'kyc.requirement_opened', 'kyc.process_started', 'kyc.attributes_stored',
             'kyc.program_outcome', 'aml.decision', 'aml.attributes_read',
             'aml.decisions_read', 'aml.journal_read', 'aml.officer_changed',
             'retention.purged', 'retention.hold', 'keys.attribute_key_adopted',
             'journal.checkpoint', 'journal.started')),
  actor    TEXT    NOT NULL,
  h_payto  BYTEA   NULL CHECK (h_payto IS NULL OR octet_length(h_payto) = 32),
  details  TEXT    NOT NULL,
  prev     BYTEA   NOT NULL CHECK (octet_length(prev) = 64),
  hash     BYTEA   NOT NULL CHECK (octet_length(hash) = 64)
);
CREATE INDEX compliance_journal_by_account ON compliance_journal (h_payto, serial);

-- Nothing in the journal can be changed or removed through talerbox.
CREATE FUNCTION compliance_journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the compliance journal is append-only';
END
$$;
CREATE TRIGGER compliance_journal_no_update BEFORE UPDATE OR DELETE ON compliance_journal
  FOR EACH ROW EXECUTE FUNCTION compliance_journal_append_only();
CREATE TRIGGER compliance_journal_no_truncate BEFORE TRUNCATE ON compliance_journal
  FOR EACH STATEMENT EXECUTE FUNCTION compliance_journal_append_only();

ALTER TABLE kyc_attributes ADD COLUMN purged_at BIGINT CHECK (purged_at >= 0);

CREATE TABLE retention_holds (
    h_payto BYTEA PRIMARY KEY CHECK (octet_length(h_payto) = 32),
    reason TEXT NOT NULL,
    since BIGINT NOT NULL CHECK (since >= 0)
);
