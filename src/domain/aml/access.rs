//! The access log (compliance-evidence.md §1.6, §2, §3): an officer's read of an account's
//! file is journaled before the answer leaves, and an attribute export carries a proof
//! signed by the journal key.

use crate::domain::evidence::{AttributesRead, ExportProof, JournalEntry, NewJournalEntry, events};
use crate::domain::primitives::crypto::sha512;
use crate::domain::primitives::{NormalizedPaytoHash, base32};
use crate::ports::journal::JournalQuery;

use super::error::AmlError;
use super::model::Officer;
use super::paging::page_from_query;
use super::service::{AmlService, AttributeReport, ExportFormat};

/// An attribute export as sent: the exact body and its proof.
#[derive(Debug, Clone)]
pub struct SignedExport {
    pub h_payto: NormalizedPaytoHash,
    pub body: Vec<u8>,
    pub pdf: bool,
    pub proof: ExportProof,
}

/// An answer that may leave only once its journal entry is committed
/// ([`AmlService::commit_read`]): the read and the wait for the commit can run on different
/// threads, so that waiting for the writer's group commit holds no worker.
#[derive(Debug)]
#[must_use]
pub struct PendingRead<T> {
    entry: NewJournalEntry,
    answer: T,
}

impl<T> PendingRead<T> {
    pub(super) fn new(entry: NewJournalEntry, answer: T) -> PendingRead<T> {
        PendingRead { entry, answer }
    }

    /// The same pending read with its answer converted, or the conversion's failure.
    pub fn try_map<U, E>(
        self,
        convert: impl FnOnce(T) -> Result<U, E>,
    ) -> Result<PendingRead<U>, E> {
        Ok(PendingRead {
            entry: self.entry,
            answer: convert(self.answer)?,
        })
    }

    /// The same pending read with its answer converted.
    pub fn map<U>(self, convert: impl FnOnce(T) -> U) -> PendingRead<U> {
        PendingRead {
            entry: self.entry,
            answer: convert(self.answer),
        }
    }
}

impl AmlService {
    /// `GET /aml/$OFFICER_PUB/attributes/$H`, journaled (also when it answers 204) before
    /// it is returned; a failed journal write answers no data.
    pub fn read_attributes(
        &self,
        officer: &Officer,
        h_payto: &str,
        query: &[(String, String)],
        format: ExportFormat,
    ) -> Result<Option<SignedExport>, AmlError> {
        let pending = self.prepare_attributes(officer, h_payto, query, format)?;
        self.commit_read(pending)
    }

    /// Journals a prepared read; only then is its answer released.
    pub fn commit_read<T>(&self, pending: PendingRead<T>) -> Result<T, AmlError> {
        self.journal(&pending.entry)?;
        Ok(pending.answer)
    }

    /// The attribute export with its proof and its journal entry, not yet committed.
    pub fn prepare_attributes(
        &self,
        officer: &Officer,
        h_payto: &str,
        query: &[(String, String)],
        format: ExportFormat,
    ) -> Result<PendingRead<Option<SignedExport>>, AmlError> {
        let report = self.attributes(officer, h_payto, query, format)?;
        let (account, body, rows) = match report {
            None => {
                let account = base32::decode_array(h_payto)
                    .map(NormalizedPaytoHash)
                    .map_err(|_| AmlError::PathSegmentMalformed("H_NORMALIZED_PAYTO"))?;
                (account, None, Vec::new())
            }
            Some(AttributeReport::Json(history)) => {
                let body = serde_json::to_vec(&history.json())
                    .map_err(|e| AmlError::Internal(e.to_string()))?;
                let rows = history.events.iter().map(|e| e.rowid).collect();
                (history.h_payto, Some(body), rows)
            }
            Some(AttributeReport::Pdf {
                h_payto,
                bytes,
                rows,
            }) => (h_payto, Some(bytes), rows),
        };
        let read = AttributesRead {
            pdf: format == ExportFormat::Pdf,
            rows: rows.first().zip(rows.last()).map(|(a, b)| (*a, *b)),
            count: rows.len() as u64,
            body_sha512: sha512(body.as_deref().unwrap_or_default()).0,
        };
        let entry = events::attributes_read(account, &officer.officer_pub, &read);
        let answer = body.map(|body| SignedExport {
            h_payto: account,
            proof: ExportProof::sign(
                &self.ports.journal_key,
                &body,
                account,
                self.ports.clock.now(),
                officer.officer_pub,
            ),
            body,
            pdf: read.pdf,
        });
        Ok(PendingRead { entry, answer })
    }

    /// `GET /aml/$OFFICER_PUB/journal`: entries newest first (paging by serial as the
    /// attributes endpoint pages by row id); a read of one account's entries is journaled.
    pub fn read_journal(
        &self,
        officer: &Officer,
        query: &[(String, String)],
    ) -> Result<Option<serde_json::Value>, AmlError> {
        match self.prepare_journal(officer, query)? {
            Ok(pending) => self.commit_read(pending),
            Err(unjournaled) => Ok(unjournaled),
        }
    }

    /// The journal page, pending its own entry when it is one account's (`Ok`), or free to
    /// go (`Err`: a read across accounts concerns no one file).
    #[allow(clippy::type_complexity)]
    pub fn prepare_journal(
        &self,
        officer: &Officer,
        query: &[(String, String)],
    ) -> Result<Result<PendingRead<Option<serde_json::Value>>, Option<serde_json::Value>>, AmlError>
    {
        let h_payto = query
            .iter()
            .find(|(name, _)| name == "h_payto")
            .map(|(_, value)| {
                base32::decode_array(value)
                    .map(NormalizedPaytoHash)
                    .map_err(|_| AmlError::ParameterMalformed("h_payto".into()))
            })
            .transpose()?;
        let page = page_from_query(query)?;
        let limit = page.limit().unsigned_abs();
        let entries = if limit == 0 {
            Vec::new()
        } else {
            self.ports.journal.entries(&JournalQuery {
                h_payto,
                before_serial: (page.offset() > 0 && !page.is_forward()).then_some(page.offset()),
                limit,
                ..JournalQuery::default()
            })?
        };
        let answer = (!entries.is_empty()).then(|| {
            let entries: Vec<serde_json::Value> = entries.iter().map(entry_json).collect();
            serde_json::json!({ "entries": entries })
        });
        let count = answer.as_ref().map_or(0, |_| entries.len() as u64);
        Ok(match h_payto {
            Some(account) => Ok(PendingRead::new(
                events::journal_read(account, &officer.officer_pub, count),
                answer,
            )),
            None => Err(answer),
        })
    }

    /// Appends a read's entry; its failure is the read's.
    pub(super) fn journal(&self, entry: &NewJournalEntry) -> Result<(), AmlError> {
        self.ports
            .journal
            .append(entry)
            .map(|_| ())
            .map_err(AmlError::JournalFailed)
    }
}

fn entry_json(entry: &JournalEntry) -> serde_json::Value {
    let details: serde_json::Value =
        serde_json::from_str(&entry.details).unwrap_or(serde_json::Value::Null);
    let mut json = serde_json::json!({
        "serial": entry.serial,
        "at": entry.at(),
        "kind": entry.kind,
        "actor": entry.actor,
        "details": details,
    });
    if let (Some(h), Some(object)) = (entry.h_payto, json.as_object_mut()) {
        object.insert("h_payto".into(), base32::encode(&h).into());
    }
    json
}
