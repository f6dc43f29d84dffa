//! `POST /aml/$OFFICER_PUB/decision` (exchange-aml-decisions.md §3): an officer's signed
//! decision, checked in the spec's order and applied with all its effects in one store
//! call; an instant (`SKIP`) measure then runs its program.

use super::model::SKIP;
use super::programs::RunInput;
use super::requirement::AccessToken;
use super::ruleset::check_event_names;
use super::service::{KycService, error};
use crate::domain::aml::decision_request::{DecisionRequest, malformed};
use crate::domain::primitives::canonical_json::CanonicalJson;
use crate::domain::primitives::{
    EddsaPublicKey, ErrorCode, NormalizedPaytoHash, TalerError, Timestamp,
};
use crate::ports::kyc::{DecisionOutcome, DecisionWrite, NewAttributes, NewKycAccount};
use crate::ports::random::random_bytes;

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    Applied {
        h_payto: NormalizedPaytoHash,
        outcome_serial: u64,
        /// The measure set it opened (or kept open).
        measure_serial: Option<u64>,
        access_token: AccessToken,
    },
    /// The same decision was applied before; nothing changed.
    Replayed,
}

impl KycService {
    /// Checks and applies a decision body signed by `officer_pub` (§3.5 steps 4–18). An
    /// instant measure's failure is an error although the decision stays applied.
    pub fn decide(&self, officer_pub: &EddsaPublicKey, body: &[u8]) -> Result<Decided, TalerError> {
        let request = DecisionRequest::parse(body)?;
        request.verify(officer_pub)?;
        let new_rules = self
            .rules
            .parse_rule_set(&request.new_rules, "new_rules")
            .map_err(|e| semantic("new_rules", e.to_string()))?;
        let measures = match &request.new_measures {
            Some(text) => self
                .rules
                .resolve_new_measures(text, &new_rules.custom_measures)
                .map_err(|e| semantic("new_measures", e.to_string()))?,
            None => None,
        };
        check_event_names(&request.events).map_err(|e| semantic("events", e.to_string()))?;
        let attributes = request
            .attributes
            .as_ref()
            .map(|a| self.officer_attributes(a, request.attributes_expiration))
            .transpose()?;
        self.check_officer(officer_pub)?;
        let instant = measures
            .as_ref()
            .and_then(|set| set.measures.iter().find(|m| m.check_name == SKIP).cloned());
        let open_measures = measures.filter(|_| instant.is_none());
        let account = request.payto_uri.as_ref().map(|payto| NewKycAccount {
            normalized_payto: payto.normalized().to_owned(),
            full_payto: payto.as_str().to_owned(),
            new_token: AccessToken(random_bytes(self.random.as_ref())),
        });
        let write = DecisionWrite {
            h_payto: request.h_payto,
            account,
            decision_time: request.decision_time,
            expiration_time: new_rules.expiration_time,
            new_rules: request.new_rules.canonical_text(),
            properties: request
                .properties
                .as_ref()
                .map(CanonicalJson::canonical_text),
            new_measures: request.new_measures.clone(),
            to_investigate: request.keep_investigating,
            justification: request.justification.clone(),
            officer_pub: *officer_pub,
            officer_sig: request.officer_sig,
            open_measures,
            attributes,
            events: request.events.clone(),
        };
        let (outcome_serial, measure_serial, access_token) =
            match self.store.apply_decision(write)? {
                DecisionOutcome::Applied {
                    outcome_serial,
                    measure_serial,
                    access_token,
                } => (outcome_serial, measure_serial, access_token),
                DecisionOutcome::Replayed => return Ok(Decided::Replayed),
                DecisionOutcome::MoreRecentPresent => {
                    return Err(error(
                        ErrorCode::ExchangeAmlDecisionMoreRecentPresent,
                        "a more recent decision is in force",
                    ));
                }
                DecisionOutcome::AccountUnknown => {
                    return Err(error(
                        ErrorCode::ExchangeGenericBankAccountUnknown,
                        "the exchange does not know this account; send payto_uri",
                    )
                    .with_detail("h_payto"));
                }
            };
        tracing::info!(
            account = %request.h_payto,
            outcome = outcome_serial,
            "AML decision applied"
        );
        if let Some(measure) = instant {
            let run = self.run_aml_program(
                &measure.prog_name,
                &RunInput {
                    h_payto: &request.h_payto,
                    context: measure.context.as_ref(),
                    attributes: None,
                    current: &new_rules,
                },
            )?;
            let error = run.caller_error();
            self.store.store_program_outcome(
                &request.h_payto,
                Some(outcome_serial),
                run.outcome,
                self.clock.now(),
            )?;
            if let Some(error) = error {
                return Err(error);
            }
        }
        Ok(Decided::Applied {
            h_payto: request.h_payto,
            outcome_serial,
            measure_serial,
            access_token,
        })
    }

    /// Step 13: a registered, active officer with the right to decide.
    fn check_officer(&self, officer_pub: &EddsaPublicKey) -> Result<(), TalerError> {
        let officer = self.officers.officer(officer_pub)?;
        let may_decide = officer.is_some_and(|o| o.is_active && !o.read_only);
        if may_decide {
            Ok(())
        } else {
            Err(error(
                ErrorCode::ExchangeAmlDecisionInvalidOfficer,
                "this key may not decide: unknown, disabled or read-only officer",
            ))
        }
    }

    /// Officer-filed attributes (§3.6 step 4): an object naming its form, encrypted.
    fn officer_attributes(
        &self,
        attributes: &CanonicalJson,
        expiration: Option<Timestamp>,
    ) -> Result<NewAttributes, TalerError> {
        let serde_json::Value::Object(map) = attributes.to_value() else {
            return Err(malformed("attributes", "attributes must be an object"));
        };
        let form_id = map
            .get("FORM_ID")
            .and_then(|f| f.as_str())
            .map(str::to_owned)
            .ok_or_else(|| malformed("attributes", "attributes need a string FORM_ID"))?;
        let now = self.clock.now();
        Ok(NewAttributes {
            form_id: Some(form_id),
            collection_time: now,
            expiration_time: expiration.unwrap_or(Timestamp::never()),
            encrypted: self.seal(&map)?,
            provider_name: None,
        })
    }
}

/// A semantic refusal (400/26) of member `member`, with the offending path as its hint.
fn semantic(member: &str, problem: String) -> TalerError {
    TalerError::new(ErrorCode::GenericParameterMalformed)
        .with_hint(problem)
        .with_detail(member.to_owned())
}
