//! `KycService`: the KYC process over the ports — triggers, kyc-info, kyc-start, kyc-upload and
//! kyc-proof (exchange-kyc spec §4–§8).

use crate::domain::evidence::RequirementTrigger;
use std::sync::Arc;

use serde::Serialize;

use super::model::{CheckKind, KycRules, MeasureSpec, SKIP};
use super::programs::RunInput;
use super::requirement::{AccessToken, MeasureAuthorization, RequirementId, RequirementIdError};
use super::rules::{LegitimizationMeasures, LegitimizationRuleSet};
use crate::domain::primitives::{ErrorCode, NormalizedPaytoHash, Payto, TalerError};
use crate::ports::aml::{InMemoryAmlStore, OfficerStore};
use crate::ports::attribute_cipher::AttributeCipher;
use crate::ports::clock::Clock;
use crate::ports::kyc::{ActivateMeasures, KycAccount, KycStore, MeasureRow};
use crate::ports::programs::{NoPrograms, ProgramRunner};
use crate::ports::provider_http::ProviderHttp;
use crate::ports::random::{Random, random_bytes};

pub struct KycService {
    pub(super) store: Arc<dyn KycStore>,
    pub(super) http: Arc<dyn ProviderHttp>,
    pub(super) cipher: Arc<dyn AttributeCipher>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) random: Arc<dyn Random>,
    pub(super) rules: KycRules,
    /// The exchange's base URL, ending in `/`.
    pub(super) base_url: String,
    /// Who may decide (officer decisions).
    pub(super) officers: Arc<dyn OfficerStore>,
    /// Runs external AML programs.
    pub(super) programs: Arc<dyn ProgramRunner>,
    /// The configuration file external programs get as `-c`.
    pub(super) program_config: Option<String>,
    /// Accounts whose AML program is running: one run per account at a time.
    pub(super) running: super::programs::AccountLocks,
    /// Accounts whose customer is starting or finishing a provider step: concurrent
    /// kyc-starts set up one validation, concurrent kyc-proofs exchange the code once.
    pub(super) provider_steps: super::programs::AccountLocks,
    /// `[exchange] ENABLE_KYC`: without it kyc-check answers 204 and kyc-wallet allows all.
    pub(super) enabled: bool,
}

/// Successor measures evaluated in a row before the rules are declared recursive.
const MAX_SUCCESSOR_ROUNDS: usize = 16;

pub(super) fn error(code: ErrorCode, hint: &'static str) -> TalerError {
    TalerError::new(code).with_hint(hint)
}

/// What a trigger opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Triggered {
    pub h_normalized_payto: NormalizedPaytoHash,
    pub access_token: String,
    pub requirement_row: u64,
}

/// A requirement as kyc-info lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Requirement {
    pub form: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description_i18n: Option<serde_json::Value>,
}

/// `KycProcessClientInformation`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KycProcessInformation {
    pub requirements: Vec<Requirement>,
    pub is_and_combinator: bool,
    pub voluntary_measures: Vec<serde_json::Value>,
}

/// kyc-info's view of an account: its ETag parts and, if a measure is open, what to show.
#[derive(Debug, Clone, PartialEq)]
pub struct KycInfo {
    pub h_payto: NormalizedPaytoHash,
    pub measure_serial: u64,
    pub outcome_serial: u64,
    pub information: Option<KycProcessInformation>,
}

impl KycInfo {
    /// `"<measure_serial>-<outcome_serial>"`, quoted.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.measure_serial, self.outcome_serial)
    }
}

impl KycService {
    pub fn new(
        store: Arc<dyn KycStore>,
        http: Arc<dyn ProviderHttp>,
        cipher: Arc<dyn AttributeCipher>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        rules: KycRules,
        base_url: String,
    ) -> KycService {
        KycService {
            store,
            http,
            cipher,
            clock,
            random,
            rules,
            base_url,
            officers: Arc::new(InMemoryAmlStore::default()),
            programs: Arc::new(NoPrograms),
            program_config: None,
            running: Default::default(),
            provider_steps: Default::default(),
            enabled: true,
        }
    }

    /// Turns KYC off (`[exchange] ENABLE_KYC = NO`) or on.
    pub fn with_kyc_enabled(mut self, enabled: bool) -> KycService {
        self.enabled = enabled;
        self
    }

    /// The officers whose decisions count (without them, every decision is refused).
    pub fn with_officers(mut self, officers: Arc<dyn OfficerStore>) -> KycService {
        self.officers = officers;
        self
    }

    /// Runs external AML programs with `runner`, passing `-c config_file` when given.
    pub fn with_programs(
        mut self,
        runner: Arc<dyn ProgramRunner>,
        config_file: Option<String>,
    ) -> KycService {
        self.programs = runner;
        self.program_config = config_file;
        self
    }

    pub fn rules(&self) -> &KycRules {
        &self.rules
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Changes whenever KYC data changed, in this process or another (for long polls).
    pub fn change_counter(&self) -> Result<u64, TalerError> {
        Ok(self.store.change_counter()?)
    }

    /// Opens the measures of `spec` for the account of the full payto `payto` (the admin
    /// trigger and the CLI, journaled as `by`); a `skip` measure runs its program at once.
    pub fn trigger(
        &self,
        payto: &str,
        spec: &MeasureSpec,
        by: RequirementTrigger,
    ) -> Result<Triggered, TalerError> {
        let payto = Payto::parse_full(payto).map_err(|e| {
            error(ErrorCode::GenericParameterMalformed, "malformed payto URI")
                .with_detail(e.to_string())
        })?;
        let measures = self
            .rules
            .resolve(spec, &Default::default())
            .ok_or_else(|| error(ErrorCode::GenericParameterMalformed, "unknown measure"))?;
        let now = self.clock.now();
        let activated = self.store.activate_measures(ActivateMeasures {
            h_payto: payto.h_normalized(),
            normalized_payto: payto.normalized().to_owned(),
            full_payto: Some(payto.as_str().to_owned()),
            new_token: AccessToken(random_bytes(self.random.as_ref())),
            account_pub: None,
            measures: measures.clone(),
            display_priority: 0,
            trigger: by,
            now,
        })?;
        self.run_skipped_measures(&payto.h_normalized(), activated.measure_serial, &measures)?;
        Ok(Triggered {
            h_normalized_payto: payto.h_normalized(),
            access_token: activated.access_token.to_base32(),
            requirement_row: activated.measure_serial,
        })
    }

    /// The account's effective rules and its active outcome's serial (0 for none), as of
    /// now (exchange-aml-decisions.md §1): the active outcome's rules until they expire,
    /// then their successor measure's, else the defaults. An expired successor with the
    /// `SKIP` check runs its program here; any other is opened as the account's measure
    /// set while the expired rules keep applying.
    pub(super) fn current_rules(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<(u64, LegitimizationRuleSet), TalerError> {
        for _ in 0..MAX_SUCCESSOR_ROUNDS {
            let now = self.clock.now();
            let Some(outcome) = self.store.active_outcome(h_payto)? else {
                return Ok((0, self.rules.default_rule_set()));
            };
            let expired = match outcome.new_rules {
                Some(rules) if rules.expiration_time > now => return Ok((outcome.serial, rules)),
                Some(rules) => rules,
                None => return Ok((outcome.serial, self.rules.default_rule_set())),
            };
            let successor = expired.successor_measure.as_deref().and_then(|name| {
                self.rules
                    .measure_information(name, &expired.custom_measures)
            });
            let Some(successor) = successor else {
                return Ok((outcome.serial, self.rules.default_rule_set()));
            };
            if successor.check_name != SKIP {
                self.open_successor(h_payto, successor)?;
                return Ok((outcome.serial, expired));
            }
            let run = self.run_aml_program(
                &successor.prog_name,
                &RunInput {
                    h_payto,
                    context: successor.context.as_ref(),
                    attributes: None,
                    current: &expired,
                },
            )?;
            // A concurrent evaluation may have stored its outcome first: then look again.
            self.store
                .store_program_outcome(h_payto, Some(outcome.serial), run.outcome, now)?;
        }
        Err(error(
            ErrorCode::ExchangeGenericAmlProgramRecursionDetected,
            "successor measures kept replacing each other",
        ))
    }

    /// The active outcome's rules while they have not expired (the CLI's `--rules keep`).
    pub fn active_rules(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<LegitimizationRuleSet>, TalerError> {
        let now = self.clock.now();
        Ok(self
            .store
            .active_outcome(h_payto)?
            .and_then(|o| o.new_rules)
            .filter(|r| r.expiration_time > now))
    }

    /// The access token of a known account (`talerbox kyc token`).
    pub fn account_token(
        &self,
        h_payto: &NormalizedPaytoHash,
    ) -> Result<Option<String>, TalerError> {
        Ok(self
            .store
            .account(h_payto)?
            .map(|a| a.access_token.to_base32()))
    }

    /// Opens an expired rule set's successor measure, unless it is open already.
    fn open_successor(
        &self,
        h_payto: &NormalizedPaytoHash,
        successor: super::rules::MeasureInformation,
    ) -> Result<(), TalerError> {
        let measures = LegitimizationMeasures {
            measures: vec![successor],
            is_and_combinator: false,
            verboten: false,
        };
        let open = self.store.open_measure(h_payto)?;
        if open.is_some_and(|m| m.measures == measures) {
            return Ok(());
        }
        let Some(account) = self.store.account(h_payto)? else {
            return Ok(());
        };
        self.store.activate_measures(ActivateMeasures {
            h_payto: *h_payto,
            normalized_payto: account.normalized_payto,
            full_payto: account.full_payto,
            new_token: account.access_token,
            account_pub: account.account_pub,
            measures,
            display_priority: 1,
            trigger: RequirementTrigger::Rule,
            now: self.clock.now(),
        })?;
        Ok(())
    }

    /// GET /kyc-info/$ACCESS_TOKEN, without the waiting (spec §4 steps 1–3 and 5–6).
    pub fn kyc_info(&self, token: &str) -> Result<KycInfo, TalerError> {
        let token = AccessToken::parse(token).ok_or_else(|| {
            error(
                ErrorCode::GenericParameterMalformed,
                "access token malformed",
            )
        })?;
        let account = self.account_for_token(&token)?;
        let (outcome_serial, rules) = self.current_rules(&account.h_payto)?;
        let open = match self.store.open_measure(&account.h_payto)? {
            Some(open) => Some(open),
            None => self.open_zero_threshold_measures(&account, &rules)?,
        };
        let Some(open) = open else {
            return Ok(KycInfo {
                h_payto: account.h_payto,
                measure_serial: 0,
                outcome_serial,
                information: None,
            });
        };
        let information = self.client_information(&token, &open)?;
        Ok(KycInfo {
            h_payto: account.h_payto,
            measure_serial: open.serial,
            outcome_serial,
            information: Some(information),
        })
    }

    pub(super) fn account_for_token(&self, token: &AccessToken) -> Result<KycAccount, TalerError> {
        self.store.account_by_token(token)?.ok_or_else(|| {
            error(
                ErrorCode::ExchangeKycInfoAuthorizationFailed,
                "unknown access token",
            )
        })
    }

    fn open_zero_threshold_measures(
        &self,
        account: &KycAccount,
        rules: &LegitimizationRuleSet,
    ) -> Result<Option<MeasureRow>, TalerError> {
        let Some(measures) = self.rules.zero_threshold_measures(rules) else {
            return Ok(None);
        };
        let activated = self.store.activate_measures(ActivateMeasures {
            h_payto: account.h_payto,
            normalized_payto: account.normalized_payto.clone(),
            full_payto: account.full_payto.clone(),
            new_token: account.access_token.clone(),
            account_pub: account.account_pub,
            measures,
            display_priority: 0,
            trigger: RequirementTrigger::Rule,
            now: self.clock.now(),
        })?;
        Ok(self.store.measure(activated.measure_serial)?)
    }

    fn client_information(
        &self,
        token: &AccessToken,
        open: &MeasureRow,
    ) -> Result<KycProcessInformation, TalerError> {
        let mut requirements = Vec::new();
        let mut row = None;
        for (index, measure) in open.measures.measures.iter().enumerate() {
            let index = u32::try_from(index)
                .map_err(|_| error(ErrorCode::ExchangeKycMeasuresMalformed, "too many measures"))?;
            let check = self.rules.checks.get(&measure.check_name).ok_or_else(|| {
                error(
                    ErrorCode::ExchangeKycGenericCheckGone,
                    "check no longer configured",
                )
                .with_detail(measure.check_name.clone())
            })?;
            let mut id = || {
                let row = row.get_or_insert_with(|| MeasureAuthorization::new(token, open.serial));
                Some(RequirementId::of_row(row, open.serial, index).to_string())
            };
            let (form, id, context) = match &check.kind {
                CheckKind::Info => ("INFO".to_owned(), None, None),
                CheckKind::Form { form_name } => (form_name.clone(), id(), measure.context.clone()),
                CheckKind::Link { .. } => ("LINK".to_owned(), id(), None),
            };
            requirements.push(Requirement {
                form,
                id,
                context,
                description: check.description.clone(),
                description_i18n: check.description_i18n.clone(),
            });
        }
        Ok(KycProcessInformation {
            requirements,
            is_and_combinator: open.measures.is_and_combinator,
            voluntary_measures: Vec::new(),
        })
    }

    /// Parses a requirement id with kyc-start's codes (404/21 without a dash, else 400/26).
    pub(super) fn parse_id(id: &str) -> Result<RequirementId, TalerError> {
        RequirementId::parse(id).map_err(|e| match e {
            RequirementIdError::NoDash => {
                error(ErrorCode::GenericEndpointUnknown, "no such requirement")
            }
            RequirementIdError::Malformed => error(
                ErrorCode::GenericParameterMalformed,
                "requirement id malformed",
            ),
        })
    }

    /// A triggered set made only of `skip` measures is settled at once by their programs.
    pub(super) fn run_skipped_measures(
        &self,
        h_payto: &NormalizedPaytoHash,
        measure_serial: u64,
        measures: &LegitimizationMeasures,
    ) -> Result<(), TalerError> {
        let Some(first) = measures.measures.first() else {
            return Ok(());
        };
        if measures.measures.iter().any(|m| m.check_name != SKIP) {
            return Ok(());
        }
        let (_, current) = self.current_rules(h_payto)?;
        let run = self.run_aml_program(
            &first.prog_name,
            &RunInput {
                h_payto,
                context: first.context.as_ref(),
                attributes: None,
                current: &current,
            },
        )?;
        self.store.settle(
            h_payto,
            measure_serial,
            run.outcome.clone(),
            self.clock.now(),
        )?;
        run.caller_error().map_or(Ok(()), Err)
    }
}

impl KycService {
    /// Encrypts attributes for storage under a fresh nonce.
    pub(super) fn seal(&self, attributes: &Attributes) -> Result<Vec<u8>, TalerError> {
        let nonce = random_bytes(self.random.as_ref());
        self.cipher.seal(attributes, nonce).map_err(|e| {
            TalerError::new(ErrorCode::GenericInternalInvariantFailure).with_detail(e.to_string())
        })
    }
}

/// An attribute object.
pub(super) type Attributes = serde_json::Map<String, serde_json::Value>;
