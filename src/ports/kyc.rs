//! The exchange's KYC store (exchange-kyc spec §2.3). Each method is one atomic transaction.

use crate::domain::kyc::{AccessToken, LegitimizationMeasures, LegitimizationRuleSet};
use crate::domain::primitives::{EddsaPublicKey, EddsaSignature, NormalizedPaytoHash, Timestamp};

use super::StoreError;

/// A KYC account: one per normalized payto, with its access token (stored raw: kyc-start must
/// recompute measure hashes from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KycAccount {
    pub h_payto: NormalizedPaytoHash,
    pub normalized_payto: String,
    pub full_payto: Option<String>,
    pub access_token: AccessToken,
    pub account_pub: Option<EddsaPublicKey>,
    pub created: Timestamp,
}

/// A set of measures the account must satisfy (`legitimization_measures`).
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureRow {
    pub serial: u64,
    pub h_payto: NormalizedPaytoHash,
    pub start_time: Timestamp,
    pub measures: LegitimizationMeasures,
    pub display_priority: u32,
    pub is_finished: bool,
}

/// One attempt at one measure of a set (`legitimization_processes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRow {
    pub serial: u64,
    pub h_payto: NormalizedPaytoHash,
    pub measure_serial: u64,
    pub measure_index: u32,
    /// The provider's name, or `FORM` for uploads.
    pub provider: String,
    pub provider_user_id: Option<String>,
    pub provider_legitimization_id: Option<String>,
    pub redirect_url: Option<String>,
    pub start_time: Timestamp,
    pub finished: bool,
    pub error_code: u32,
    pub error_message: Option<String>,
}

/// A decision on an account: an officer's, or a program's outcome (`legitimization_outcomes`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRow {
    pub serial: u64,
    pub h_payto: NormalizedPaytoHash,
    pub decision_time: Timestamp,
    pub expiration_time: Timestamp,
    pub properties: Option<serde_json::Value>,
    pub to_investigate: bool,
    pub is_active: bool,
    pub new_rules: Option<LegitimizationRuleSet>,
}

/// Opens a measure set for an account, creating the account (with `new_token`) if needed.
#[derive(Debug, Clone)]
pub struct ActivateMeasures {
    pub h_payto: NormalizedPaytoHash,
    pub normalized_payto: String,
    pub full_payto: Option<String>,
    pub new_token: AccessToken,
    pub account_pub: Option<EddsaPublicKey>,
    pub measures: LegitimizationMeasures,
    pub display_priority: u32,
    /// What opens the set (journaled with it).
    pub trigger: crate::domain::evidence::RequirementTrigger,
    pub now: Timestamp,
}

/// Records the key that authenticates kyc-check for an account (a wallet's reserve key, or
/// a bank account's key set by the operator), creating the account with `new_token` if needed.
#[derive(Debug, Clone)]
pub struct RecordAccountKey {
    pub h_payto: NormalizedPaytoHash,
    pub normalized_payto: String,
    pub full_payto: Option<String>,
    pub new_token: AccessToken,
    pub account_pub: EddsaPublicKey,
    pub now: Timestamp,
}

/// The account after its key was recorded, and the key it had before (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecorded {
    pub account: KycAccount,
    pub previous: Option<EddsaPublicKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activated {
    pub access_token: AccessToken,
    pub measure_serial: u64,
}

/// A finished process with the encrypted attributes it stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedProcess {
    pub process: ProcessRow,
    pub attributes: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginProcess {
    /// An unfinished process of this measure already sent the customer here.
    Existing { redirect_url: String },
    /// A fresh (or restarted) process, to be initiated with the provider.
    Started { process_serial: u64 },
    /// The measure set was finished meanwhile.
    MeasureFinished,
}

/// Encrypted attributes to append (`kyc_attributes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttributes {
    pub form_id: Option<String>,
    pub collection_time: Timestamp,
    pub expiration_time: Timestamp,
    pub encrypted: Vec<u8>,
    pub provider_name: Option<String>,
}

/// Which process a completion closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompletedProcess {
    /// A provider process (kyc-proof).
    Provider {
        process_serial: u64,
        provider_user_id: String,
    },
    /// A form upload: a `FORM` process is inserted finished.
    Form { measure_index: u32 },
}

/// Everything a completed check changes, in one transaction: the process, the attributes,
/// the program's outcome, the finished measure set and, after a program failure, the
/// fallback's measure set.
#[derive(Debug, Clone)]
pub struct Completion {
    pub h_payto: NormalizedPaytoHash,
    pub measure_serial: u64,
    pub process: CompletedProcess,
    pub attributes: NewAttributes,
    pub outcome: Option<NewOutcome>,
    pub next_measures: Option<LegitimizationMeasures>,
    /// The program failed (its fallback's outcome is `outcome`): recorded on the process.
    pub process_error: Option<(u32, String)>,
    pub now: Timestamp,
}

/// A program's outcome to store. Its `to_investigate` is sticky: the stored flag is this
/// one OR the flag of the outcome it replaces (only an officer clears it).
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutcome {
    /// The AML program that produced it (the journal's actor).
    pub program: String,
    pub expiration_time: Timestamp,
    pub properties: Option<serde_json::Value>,
    pub to_investigate: bool,
    pub new_rules: LegitimizationRuleSet,
    /// Counted for statistics at the outcome's time.
    pub events: Vec<String>,
}

/// An account that an officer decision creates (from its `payto_uri`) if it is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKycAccount {
    pub normalized_payto: String,
    pub full_payto: String,
    pub new_token: AccessToken,
}

/// An officer decision with everything it changes (exchange-aml-decisions.md §3.6), stored
/// in one transaction after the checks of steps 14–16, which the store makes.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionWrite {
    pub h_payto: NormalizedPaytoHash,
    pub account: Option<NewKycAccount>,
    pub decision_time: Timestamp,
    pub expiration_time: Timestamp,
    /// Canonical texts, so that the signature can be checked again from the database.
    pub new_rules: String,
    pub properties: Option<String>,
    pub new_measures: Option<String>,
    pub to_investigate: bool,
    pub justification: String,
    pub officer_pub: EddsaPublicKey,
    pub officer_sig: EddsaSignature,
    /// A measure set to open (an identical open one is kept); every other open set of the
    /// account is finished.
    pub open_measures: Option<LegitimizationMeasures>,
    /// Officer-filed attributes.
    pub attributes: Option<NewAttributes>,
    pub events: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionOutcome {
    Applied {
        outcome_serial: u64,
        measure_serial: Option<u64>,
        access_token: AccessToken,
    },
    /// The account already has a decision with this signature: nothing changed.
    Replayed,
    /// The active outcome was decided later than this decision.
    MoreRecentPresent,
    /// No such account, and no payto URI to create it.
    AccountUnknown,
}

/// An officer decision as AML programs receive it (`aml_history`), newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AmlHistoryEntry {
    pub decision_time: Timestamp,
    pub justification: String,
    pub decider_pub: EddsaPublicKey,
    pub properties: Option<serde_json::Value>,
    pub new_rules: serde_json::Value,
    pub to_investigate: bool,
    pub is_active: bool,
}

/// An attribute row with the process that collected it (`kyc_history`), newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KycHistoryEntry {
    pub provider_name: String,
    pub finished: bool,
    pub error_code: u32,
    pub error_message: Option<String>,
    pub provider_user_id: Option<String>,
    pub provider_legitimization_id: Option<String>,
    pub collection_time: Timestamp,
    pub expiration_time: Timestamp,
    pub encrypted: Vec<u8>,
}

/// A measure set as officers list it (`GET /aml/$PUB/legitimizations`).
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureListing {
    pub filter_h_payto: Option<NormalizedPaytoHash>,
    /// `Some(true)`: open sets only; `Some(false)`: finished ones only.
    pub open: Option<bool>,
}

/// Which accounts to list: each `Some(b)` keeps those whose property is `b`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountFilter {
    /// The active outcome asks for investigation.
    pub investigation: Option<bool>,
    /// The account has an active outcome (rules of its own).
    pub open: Option<bool>,
    /// The active outcome's `properties.high_risk` is `true`.
    pub high_risk: Option<bool>,
}

impl AccountSummary {
    pub fn to_investigate(&self) -> bool {
        self.active.as_ref().is_some_and(|o| o.to_investigate)
    }

    pub fn high_risk(&self) -> bool {
        self.active
            .as_ref()
            .and_then(|o| o.properties.as_ref())
            .and_then(|p| p.get("high_risk"))
            == Some(&serde_json::Value::Bool(true))
    }

    pub fn passes(&self, filter: &AccountFilter) -> bool {
        filter
            .investigation
            .is_none_or(|b| b == self.to_investigate())
            && filter.open.is_none_or(|b| b == self.active.is_some())
            && filter.high_risk.is_none_or(|b| b == self.high_risk())
    }
}

/// An account as officers list it (`GET /aml/$PUB/accounts`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountSummary {
    pub serial: u64,
    pub h_payto: NormalizedPaytoHash,
    pub full_payto: Option<String>,
    /// The active outcome, if any.
    pub active: Option<OutcomeRow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompleteOutcome {
    Completed,
    /// The measure set was finished meanwhile (e.g. a replayed proof); nothing changed.
    AlreadyFinished,
}

pub trait KycStore: Send + Sync {
    fn activate_measures(&self, request: ActivateMeasures) -> Result<Activated, StoreError>;
    fn account_by_token(&self, token: &AccessToken) -> Result<Option<KycAccount>, StoreError>;
    /// Sets the account's key (replacing an earlier one), creating the account if needed.
    fn record_account_key(&self, request: RecordAccountKey) -> Result<KeyRecorded, StoreError>;
    fn account(&self, h_payto: &NormalizedPaytoHash) -> Result<Option<KycAccount>, StoreError>;
    /// The account's unfinished measure set, if any.
    fn open_measure(&self, h_payto: &NormalizedPaytoHash)
    -> Result<Option<MeasureRow>, StoreError>;
    fn measure(&self, serial: u64) -> Result<Option<MeasureRow>, StoreError>;
    fn active_outcome(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<OutcomeRow>, StoreError>;
    /// kyc-start's idempotent start of a process for measure `index` of set `measure_serial`.
    fn begin_process(
        &self,
        measure_serial: u64,
        index: u32,
        provider: &str,
        now: Timestamp,
    ) -> Result<BeginProcess, StoreError>;
    /// Records where the provider sends the customer; the legitimization id is the serial.
    /// The first URL recorded for a start wins (concurrent starts of one requirement answer
    /// the same URL); answers the URL now stored.
    fn record_redirect(
        &self,
        process_serial: u64,
        redirect_url: &str,
    ) -> Result<String, StoreError>;
    /// Marks a process failed (finished, with an error).
    fn fail_process(&self, process_serial: u64, code: u32, message: &str)
    -> Result<(), StoreError>;
    /// The newest unfinished process of the account with this provider.
    fn open_process(
        &self,
        h_payto: &NormalizedPaytoHash,
        provider: &str,
    ) -> Result<Option<ProcessRow>, StoreError>;
    /// The newest process of the account with this provider, finished or not.
    fn latest_process(
        &self,
        h_payto: &NormalizedPaytoHash,
        provider: &str,
    ) -> Result<Option<ProcessRow>, StoreError>;
    /// The finished process of measure `index` of set `measure_serial` and its attributes.
    fn finished_process(
        &self,
        measure_serial: u64,
        index: u32,
    ) -> Result<Option<FinishedProcess>, StoreError>;
    fn complete(&self, completion: Completion) -> Result<CompleteOutcome, StoreError>;
    /// Settles a measure set without a check (`skip`): the program's outcome, set finished.
    fn settle(
        &self,
        h_payto: &NormalizedPaytoHash,
        measure_serial: u64,
        outcome: NewOutcome,
        now: Timestamp,
    ) -> Result<CompleteOutcome, StoreError>;
    /// A number that changes whenever any process changed the KYC data (for long polls
    /// woken by other processes, such as the CLI).
    fn change_counter(&self) -> Result<u64, StoreError>;
    /// Records an officer decision and its effects, or tells why not.
    fn apply_decision(&self, decision: DecisionWrite) -> Result<DecisionOutcome, StoreError>;
    /// Stores a program's outcome outside a measure set (an instant measure, a successor
    /// measure), unless the active outcome is no longer `replaces` (then `false`).
    fn store_program_outcome(
        &self,
        h_payto: &NormalizedPaytoHash,
        replaces: Option<u64>,
        outcome: NewOutcome,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// The encrypted blob of the account's newest attribute row.
    fn newest_attributes(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Officer decisions on the account, newest first.
    fn aml_history(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Vec<AmlHistoryEntry>, StoreError>;
    /// Attribute rows collected by processes, newest first.
    fn kyc_history(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Vec<KycHistoryEntry>, StoreError>;
    /// Events named `name` with `start <= time < end`.
    fn count_events(&self, name: &str, start: Timestamp, end: Timestamp)
    -> Result<u64, StoreError>;
    /// Measure sets on `page` (over their serial) that pass `listing`.
    fn list_measures(
        &self,
        listing: &MeasureListing,
        page: &crate::domain::aml::Page,
    ) -> Result<Vec<MeasureRow>, StoreError>;
    /// Accounts on `page` (over their serial) that pass `filter`, with their active outcome.
    fn list_accounts(
        &self,
        filter: &AccountFilter,
        page: &crate::domain::aml::Page,
    ) -> Result<Vec<AccountSummary>, StoreError>;
}

/// An in-memory `KycStore` for unit tests and embedders.
#[derive(Debug, Default)]
pub struct InMemoryKycStore {
    state: std::sync::Mutex<MemoryKyc>,
}

#[derive(Debug, Default)]
struct MemoryKyc {
    accounts: Vec<KycAccount>,
    measures: Vec<MeasureRow>,
    processes: Vec<ProcessRow>,
    /// (process serial or none, h_payto, attributes).
    attributes: Vec<(Option<u64>, NormalizedPaytoHash, NewAttributes)>,
    outcomes: Vec<OutcomeRow>,
    /// Officer decisions: (outcome serial, justification, officer, signature).
    history: Vec<(u64, String, EddsaPublicKey, EddsaSignature)>,
    events: Vec<(String, Timestamp)>,
    changes: u64,
}

impl MemoryKyc {
    /// Finishes a measure set and its unfinished processes.
    fn finish_measure(&mut self, serial: u64) {
        for measure in self.measures.iter_mut().filter(|m| m.serial == serial) {
            measure.is_finished = true;
        }
        for process in self
            .processes
            .iter_mut()
            .filter(|p| p.measure_serial == serial)
        {
            process.finished = true;
        }
    }

    /// Inserts the account's new active outcome, deactivating the previous one.
    fn insert_outcome(
        &mut self,
        h_payto: &NormalizedPaytoHash,
        outcome: NewOutcome,
        now: Timestamp,
    ) {
        let mut sticky = false;
        for old in self.outcomes.iter_mut().filter(|o| &o.h_payto == h_payto) {
            sticky |= old.is_active && old.to_investigate;
            old.is_active = false;
        }
        for event in &outcome.events {
            self.events.push((event.clone(), now));
        }
        let serial = self.outcomes.len() as u64 + 1;
        self.outcomes.push(OutcomeRow {
            serial,
            h_payto: *h_payto,
            decision_time: now,
            expiration_time: outcome.expiration_time,
            properties: outcome.properties,
            to_investigate: outcome.to_investigate || sticky,
            is_active: true,
            new_rules: Some(outcome.new_rules),
        });
    }

    fn active_serial(&self, h_payto: &NormalizedPaytoHash) -> Option<u64> {
        self.outcomes
            .iter()
            .find(|o| &o.h_payto == h_payto && o.is_active)
            .map(|o| o.serial)
    }

    fn open_measure_serial(&self, h_payto: &NormalizedPaytoHash) -> Option<u64> {
        self.measures
            .iter()
            .find(|m| &m.h_payto == h_payto && !m.is_finished)
            .map(|m| m.serial)
    }

    fn insert_measure(
        &mut self,
        h_payto: &NormalizedPaytoHash,
        measures: LegitimizationMeasures,
        display_priority: u32,
        now: Timestamp,
    ) -> u64 {
        if let Some(open) = self.open_measure_serial(h_payto) {
            self.finish_measure(open);
        }
        let serial = self.measures.len() as u64 + 1;
        self.measures.push(MeasureRow {
            serial,
            h_payto: *h_payto,
            start_time: now,
            measures,
            display_priority,
            is_finished: false,
        });
        serial
    }
}

impl InMemoryKycStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryKyc> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Attribute rows stored so far (process serial, account, attributes).
    pub fn attributes(&self) -> Vec<(Option<u64>, NormalizedPaytoHash, NewAttributes)> {
        self.lock().attributes.clone()
    }
}

impl KycStore for InMemoryKycStore {
    fn activate_measures(&self, request: ActivateMeasures) -> Result<Activated, StoreError> {
        let mut state = self.lock();
        let access_token = match state.accounts.iter().find(|a| a.h_payto == request.h_payto) {
            Some(account) => account.access_token.clone(),
            None => {
                state.accounts.push(KycAccount {
                    h_payto: request.h_payto,
                    normalized_payto: request.normalized_payto.clone(),
                    full_payto: request.full_payto.clone(),
                    access_token: request.new_token.clone(),
                    account_pub: request.account_pub,
                    created: request.now,
                });
                request.new_token.clone()
            }
        };
        let identical = state
            .measures
            .iter()
            .find(|m| {
                m.h_payto == request.h_payto && !m.is_finished && m.measures == request.measures
            })
            .map(|m| m.serial);
        let measure_serial = match identical {
            Some(serial) => serial,
            None => state.insert_measure(
                &request.h_payto,
                request.measures,
                request.display_priority,
                request.now,
            ),
        };
        state.changes += 1;
        Ok(Activated {
            access_token,
            measure_serial,
        })
    }

    fn record_account_key(&self, request: RecordAccountKey) -> Result<KeyRecorded, StoreError> {
        let mut state = self.lock();
        let position = state
            .accounts
            .iter()
            .position(|a| a.h_payto == request.h_payto);
        let (account, previous) = match position {
            Some(index) => {
                let account = &mut state.accounts[index];
                let previous = account.account_pub.replace(request.account_pub);
                (account.clone(), previous)
            }
            None => {
                let account = KycAccount {
                    h_payto: request.h_payto,
                    normalized_payto: request.normalized_payto,
                    full_payto: request.full_payto,
                    access_token: request.new_token,
                    account_pub: Some(request.account_pub),
                    created: request.now,
                };
                state.accounts.push(account.clone());
                (account, None)
            }
        };
        state.changes += 1;
        Ok(KeyRecorded { account, previous })
    }

    fn account_by_token(&self, token: &AccessToken) -> Result<Option<KycAccount>, StoreError> {
        Ok(self
            .lock()
            .accounts
            .iter()
            .find(|a| &a.access_token == token)
            .cloned())
    }

    fn account(&self, h_payto: &NormalizedPaytoHash) -> Result<Option<KycAccount>, StoreError> {
        Ok(self
            .lock()
            .accounts
            .iter()
            .find(|a| &a.h_payto == h_payto)
            .cloned())
    }

    fn open_measure(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<MeasureRow>, StoreError> {
        Ok(self
            .lock()
            .measures
            .iter()
            .find(|m| &m.h_payto == h_payto && !m.is_finished)
            .cloned())
    }

    fn measure(&self, serial: u64) -> Result<Option<MeasureRow>, StoreError> {
        Ok(self
            .lock()
            .measures
            .iter()
            .find(|m| m.serial == serial)
            .cloned())
    }

    fn active_outcome(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<OutcomeRow>, StoreError> {
        Ok(self
            .lock()
            .outcomes
            .iter()
            .find(|o| &o.h_payto == h_payto && o.is_active)
            .cloned())
    }

    fn begin_process(
        &self,
        measure_serial: u64,
        index: u32,
        provider: &str,
        now: Timestamp,
    ) -> Result<BeginProcess, StoreError> {
        let mut state = self.lock();
        let Some(measure) = state
            .measures
            .iter()
            .find(|m| m.serial == measure_serial)
            .cloned()
        else {
            return Ok(BeginProcess::MeasureFinished);
        };
        if measure.is_finished {
            return Ok(BeginProcess::MeasureFinished);
        }
        let existing = state
            .processes
            .iter_mut()
            .find(|p| p.measure_serial == measure_serial && p.measure_index == index);
        if let Some(process) = existing {
            if let (false, Some(url)) = (process.finished, &process.redirect_url) {
                return Ok(BeginProcess::Existing {
                    redirect_url: url.clone(),
                });
            }
            process.provider = provider.to_owned();
            process.start_time = now;
            process.provider_user_id = None;
            process.provider_legitimization_id = None;
            process.redirect_url = None;
            process.finished = false;
            process.error_code = 0;
            process.error_message = None;
            return Ok(BeginProcess::Started {
                process_serial: process.serial,
            });
        }
        let serial = state.processes.len() as u64 + 1;
        state.processes.push(ProcessRow {
            serial,
            h_payto: measure.h_payto,
            measure_serial,
            measure_index: index,
            provider: provider.to_owned(),
            provider_user_id: None,
            provider_legitimization_id: None,
            redirect_url: None,
            start_time: now,
            finished: false,
            error_code: 0,
            error_message: None,
        });
        Ok(BeginProcess::Started {
            process_serial: serial,
        })
    }

    fn record_redirect(
        &self,
        process_serial: u64,
        redirect_url: &str,
    ) -> Result<String, StoreError> {
        let mut state = self.lock();
        let Some(process) = state
            .processes
            .iter_mut()
            .find(|p| p.serial == process_serial)
        else {
            return Ok(redirect_url.to_owned());
        };
        process
            .provider_legitimization_id
            .get_or_insert_with(|| process_serial.to_string());
        Ok(process
            .redirect_url
            .get_or_insert_with(|| redirect_url.to_owned())
            .clone())
    }

    fn fail_process(
        &self,
        process_serial: u64,
        code: u32,
        message: &str,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        if let Some(process) = state
            .processes
            .iter_mut()
            .find(|p| p.serial == process_serial)
        {
            process.finished = true;
            process.error_code = code;
            process.error_message = Some(message.to_owned());
        }
        state.changes += 1;
        Ok(())
    }

    fn open_process(
        &self,
        h_payto: &NormalizedPaytoHash,
        provider: &str,
    ) -> Result<Option<ProcessRow>, StoreError> {
        let state = self.lock();
        let newest = state
            .processes
            .iter()
            .filter(|p| &p.h_payto == h_payto && p.provider == provider && !p.finished)
            .max_by_key(|p| p.serial);
        Ok(newest.cloned())
    }

    fn latest_process(
        &self,
        h_payto: &NormalizedPaytoHash,
        provider: &str,
    ) -> Result<Option<ProcessRow>, StoreError> {
        let state = self.lock();
        let newest = state
            .processes
            .iter()
            .filter(|p| &p.h_payto == h_payto && p.provider == provider)
            .max_by_key(|p| p.serial);
        Ok(newest.cloned())
    }

    fn finished_process(
        &self,
        measure_serial: u64,
        index: u32,
    ) -> Result<Option<FinishedProcess>, StoreError> {
        let state = self.lock();
        let Some(process) = state.processes.iter().find(|p| {
            p.measure_serial == measure_serial
                && p.measure_index == index
                && p.finished
                && p.error_code == 0
        }) else {
            return Ok(None);
        };
        let attributes = state
            .attributes
            .iter()
            .find(|(serial, _, _)| *serial == Some(process.serial))
            .map(|(_, _, a)| a.encrypted.clone());
        Ok(Some(FinishedProcess {
            process: process.clone(),
            attributes,
        }))
    }

    fn complete(&self, completion: Completion) -> Result<CompleteOutcome, StoreError> {
        let mut state = self.lock();
        let open = state
            .measures
            .iter()
            .any(|m| m.serial == completion.measure_serial && !m.is_finished);
        if !open {
            return Ok(CompleteOutcome::AlreadyFinished);
        }
        let process_serial = match &completion.process {
            CompletedProcess::Provider {
                process_serial,
                provider_user_id,
            } => {
                let Some(process) = state
                    .processes
                    .iter_mut()
                    .find(|p| p.serial == *process_serial && !p.finished)
                else {
                    return Ok(CompleteOutcome::AlreadyFinished);
                };
                process.provider_user_id = Some(provider_user_id.clone());
                process.finished = true;
                *process_serial
            }
            CompletedProcess::Form { measure_index } => {
                let serial = state.processes.len() as u64 + 1;
                state.processes.push(ProcessRow {
                    serial,
                    h_payto: completion.h_payto,
                    measure_serial: completion.measure_serial,
                    measure_index: *measure_index,
                    provider: "FORM".into(),
                    provider_user_id: None,
                    provider_legitimization_id: None,
                    redirect_url: None,
                    start_time: completion.now,
                    finished: true,
                    error_code: 0,
                    error_message: None,
                });
                serial
            }
        };
        state.attributes.push((
            Some(process_serial),
            completion.h_payto,
            completion.attributes,
        ));
        if let Some((code, message)) = &completion.process_error
            && let Some(process) = state
                .processes
                .iter_mut()
                .find(|p| p.serial == process_serial)
        {
            process.error_code = *code;
            process.error_message = Some(message.clone());
        }
        if let Some(outcome) = completion.outcome {
            state.insert_outcome(&completion.h_payto, outcome, completion.now);
        }
        state.finish_measure(completion.measure_serial);
        if let Some(next) = completion.next_measures {
            state.insert_measure(&completion.h_payto, next, 0, completion.now);
        }
        state.changes += 1;
        Ok(CompleteOutcome::Completed)
    }

    fn settle(
        &self,
        h_payto: &NormalizedPaytoHash,
        measure_serial: u64,
        outcome: NewOutcome,
        now: Timestamp,
    ) -> Result<CompleteOutcome, StoreError> {
        let mut state = self.lock();
        if !state
            .measures
            .iter()
            .any(|m| m.serial == measure_serial && !m.is_finished)
        {
            return Ok(CompleteOutcome::AlreadyFinished);
        }
        state.insert_outcome(h_payto, outcome, now);
        state.finish_measure(measure_serial);
        state.changes += 1;
        Ok(CompleteOutcome::Completed)
    }

    fn change_counter(&self) -> Result<u64, StoreError> {
        Ok(self.lock().changes)
    }

    fn apply_decision(&self, decision: DecisionWrite) -> Result<DecisionOutcome, StoreError> {
        let mut state = self.lock();
        let replayed = state.history.iter().any(|(serial, _, _, sig)| {
            *sig == decision.officer_sig
                && state
                    .outcomes
                    .iter()
                    .any(|o| o.serial == *serial && o.h_payto == decision.h_payto)
        });
        if replayed {
            return Ok(DecisionOutcome::Replayed);
        }
        let newer = state.outcomes.iter().any(|o| {
            o.h_payto == decision.h_payto && o.is_active && o.decision_time > decision.decision_time
        });
        if newer {
            return Ok(DecisionOutcome::MoreRecentPresent);
        }
        let known = state
            .accounts
            .iter()
            .position(|a| a.h_payto == decision.h_payto);
        let index = match (known, &decision.account) {
            (Some(index), new) => {
                if let (None, Some(new)) = (&state.accounts[index].full_payto, new) {
                    state.accounts[index].full_payto = Some(new.full_payto.clone());
                }
                index
            }
            (None, None) => return Ok(DecisionOutcome::AccountUnknown),
            (None, Some(new)) => {
                state.accounts.push(KycAccount {
                    h_payto: decision.h_payto,
                    normalized_payto: new.normalized_payto.clone(),
                    full_payto: Some(new.full_payto.clone()),
                    access_token: new.new_token.clone(),
                    account_pub: None,
                    created: decision.decision_time,
                });
                state.accounts.len() - 1
            }
        };
        let access_token = state.accounts[index].access_token.clone();
        let new_rules: LegitimizationRuleSet = serde_json::from_str(&decision.new_rules)
            .map_err(|e| StoreError::Internal(format!("new_rules: {e}")))?;
        let properties = decision
            .properties
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| StoreError::Internal(format!("properties: {e}")))?;
        for old in state
            .outcomes
            .iter_mut()
            .filter(|o| o.h_payto == decision.h_payto)
        {
            old.is_active = false;
        }
        let outcome_serial = state.outcomes.len() as u64 + 1;
        state.outcomes.push(OutcomeRow {
            serial: outcome_serial,
            h_payto: decision.h_payto,
            decision_time: decision.decision_time,
            expiration_time: decision.expiration_time,
            properties,
            to_investigate: decision.to_investigate,
            is_active: true,
            new_rules: Some(new_rules),
        });
        state.history.push((
            outcome_serial,
            decision.justification.clone(),
            decision.officer_pub,
            decision.officer_sig,
        ));
        let open = state.open_measure_serial(&decision.h_payto);
        let measure_serial = match decision.open_measures {
            Some(measures) => {
                let identical = open.filter(|serial| {
                    state
                        .measures
                        .iter()
                        .any(|m| m.serial == *serial && m.measures == measures)
                });
                Some(match identical {
                    Some(serial) => serial,
                    None => {
                        state.insert_measure(&decision.h_payto, measures, 1, decision.decision_time)
                    }
                })
            }
            None => {
                if let Some(open) = open {
                    state.finish_measure(open);
                }
                None
            }
        };
        if let Some(attributes) = decision.attributes {
            state.attributes.push((None, decision.h_payto, attributes));
        }
        for event in decision.events {
            state.events.push((event, decision.decision_time));
        }
        state.changes += 1;
        Ok(DecisionOutcome::Applied {
            outcome_serial,
            measure_serial,
            access_token,
        })
    }

    fn store_program_outcome(
        &self,
        h_payto: &NormalizedPaytoHash,
        replaces: Option<u64>,
        outcome: NewOutcome,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if state.active_serial(h_payto) != replaces {
            return Ok(false);
        }
        state.insert_outcome(h_payto, outcome, now);
        state.changes += 1;
        Ok(true)
    }

    fn newest_attributes(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()
            .attributes
            .iter()
            .rev()
            .find(|(_, h, _)| h == h_payto)
            .map(|(_, _, a)| a.encrypted.clone()))
    }

    fn aml_history(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Vec<AmlHistoryEntry>, StoreError> {
        let state = self.lock();
        let mut entries = Vec::new();
        for (serial, justification, officer, _) in state.history.iter().rev() {
            let Some(outcome) = state
                .outcomes
                .iter()
                .find(|o| o.serial == *serial && &o.h_payto == h_payto)
            else {
                continue;
            };
            entries.push(AmlHistoryEntry {
                decision_time: outcome.decision_time,
                justification: justification.clone(),
                decider_pub: *officer,
                properties: outcome.properties.clone(),
                new_rules: serde_json::to_value(&outcome.new_rules)
                    .map_err(|e| StoreError::Internal(e.to_string()))?,
                to_investigate: outcome.to_investigate,
                is_active: outcome.is_active,
            });
        }
        Ok(entries)
    }

    fn kyc_history(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Vec<KycHistoryEntry>, StoreError> {
        let state = self.lock();
        let mut entries = Vec::new();
        for (serial, h, attributes) in state.attributes.iter().rev() {
            let Some(process) = serial
                .and_then(|serial| state.processes.iter().find(|p| p.serial == serial))
                .filter(|_| h == h_payto)
            else {
                continue;
            };
            entries.push(KycHistoryEntry {
                provider_name: process.provider.clone(),
                finished: process.finished,
                error_code: process.error_code,
                error_message: process.error_message.clone(),
                provider_user_id: process.provider_user_id.clone(),
                provider_legitimization_id: process.provider_legitimization_id.clone(),
                collection_time: attributes.collection_time,
                expiration_time: attributes.expiration_time,
                encrypted: attributes.encrypted.clone(),
            });
        }
        Ok(entries)
    }

    fn count_events(
        &self,
        name: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .events
            .iter()
            .filter(|(event, at)| event == name && *at >= start && *at < end)
            .count() as u64)
    }

    fn list_measures(
        &self,
        listing: &MeasureListing,
        page: &crate::domain::aml::Page,
    ) -> Result<Vec<MeasureRow>, StoreError> {
        let state = self.lock();
        let rows = state.measures.iter().filter(|m| {
            page.admits(m.serial)
                && listing.filter_h_payto.is_none_or(|h| h == m.h_payto)
                && listing.open.is_none_or(|open| open != m.is_finished)
        });
        Ok(take_page(rows, page))
    }

    fn list_accounts(
        &self,
        filter: &AccountFilter,
        page: &crate::domain::aml::Page,
    ) -> Result<Vec<AccountSummary>, StoreError> {
        let state = self.lock();
        let summaries = state
            .accounts
            .iter()
            .enumerate()
            .map(|(i, account)| AccountSummary {
                serial: i as u64 + 1,
                h_payto: account.h_payto,
                full_payto: account.full_payto.clone(),
                active: state
                    .outcomes
                    .iter()
                    .find(|o| o.h_payto == account.h_payto && o.is_active)
                    .cloned(),
            });
        let admitted: Vec<AccountSummary> = summaries
            .filter(|s| page.admits(s.serial) && s.passes(filter))
            .collect();
        Ok(take_page(admitted.iter(), page))
    }
}

/// The first rows of `rows` (ascending by serial) in the page's direction.
fn take_page<'a, T: Clone + 'a>(
    rows: impl DoubleEndedIterator<Item = &'a T>,
    page: &crate::domain::aml::Page,
) -> Vec<T> {
    if page.limit() == 0 {
        return Vec::new();
    }
    if page.is_forward() {
        rows.take(page.count()).cloned().collect()
    } else {
        rows.rev().take(page.count()).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    crate::ports::kyc_conformance::kyc_store_conformance!(super::InMemoryKycStore::default());
}
