//! Running AML programs (exchange-aml-decisions.md §5): built-in ones in process, external
//! ones through the program runner port with the exchange's helper contract. A failed run
//! is recorded and its program's fallback measure decides instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::model::{BuiltinProgram, Program, ProgramCommand, ProgramInput};
use super::rules::{AmlOutcome, LegitimizationRuleSet, run_builtin};
use super::ruleset::check_event_names;
use super::service::{Attributes, KycService, error};
use crate::domain::primitives::canonical_json::CanonicalJson;
use crate::domain::primitives::{ErrorCode, NormalizedPaytoHash, TalerError};
use crate::ports::kyc::NewOutcome;
use crate::ports::programs::ProgramRunError;

/// Introspection calls (`-r`, `-a`, `-i`) may take this long.
pub const INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The outcome of a program run, and why the program failed if its fallback decided.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramRun {
    pub outcome: NewOutcome,
    /// The code and message recorded for the failed program (e.g. 1946, "new_rules: …").
    pub failure: Option<(ErrorCode, String)>,
    /// The fallback failed too: `outcome` keeps the rules and flags the account.
    pub fallback_failed: bool,
}

impl ProgramRun {
    /// The error a caller answers after a failure: 1945 when the fallback decided, 1039
    /// when it failed too.
    pub fn caller_error(&self) -> Option<TalerError> {
        let (code, message) = self.failure.as_ref()?;
        let answer = if self.fallback_failed {
            error(
                ErrorCode::ExchangeGenericKycFallbackFailed,
                "the fallback AML program failed",
            )
        } else {
            error(
                ErrorCode::ExchangeKycAmlProgramFailure,
                "the AML program failed",
            )
        };
        Some(answer.with_detail(format!("{}: {message}", code.name())))
    }
}

/// What a run needs besides the program.
pub(super) struct RunInput<'a> {
    pub h_payto: &'a NormalizedPaytoHash,
    pub context: Option<&'a Value>,
    /// The collected attributes; `None` reads the account's newest row.
    pub attributes: Option<&'a Attributes>,
    pub current: &'a LegitimizationRuleSet,
}

type Failure = (ErrorCode, String);

/// One lock per account (for program runs, or for a customer's steps with a provider);
/// entries go when their last holder does.
#[derive(Default)]
pub struct AccountLocks {
    locks: Mutex<HashMap<NormalizedPaytoHash, Arc<Mutex<()>>>>,
}

impl AccountLocks {
    /// Runs `work` while no other holder of the account's lock runs.
    pub(super) fn exclusive<T>(
        &self,
        h_payto: &NormalizedPaytoHash,
        work: impl FnOnce() -> T,
    ) -> T {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(locks.entry(*h_payto).or_default())
        };
        let result = {
            let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
            work()
        };
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Two references: the map's and ours; nobody else waits.
        if Arc::strong_count(&lock) == 2 {
            locks.remove(h_payto);
        }
        result
    }
}

impl KycService {
    /// Runs program `prog_name`; on failure its fallback's outcome is returned with the
    /// failure. Only a missing fallback, or a failing one, is an error.
    pub(super) fn run_aml_program(
        &self,
        prog_name: &str,
        input: &RunInput<'_>,
    ) -> Result<ProgramRun, TalerError> {
        let program = self.rules.programs.get(prog_name).ok_or_else(|| {
            error(
                ErrorCode::ExchangeKycGenericAmlProgramGone,
                "AML program no longer configured",
            )
            .with_detail(prog_name.to_owned())
        })?;
        let tried = self
            .running
            .exclusive(input.h_payto, || self.try_program(program, input));
        match tried {
            Ok(outcome) => Ok(ProgramRun {
                outcome: new_outcome(outcome, &program.name),
                failure: None,
                fallback_failed: false,
            }),
            Err((code, message)) => {
                tracing::warn!(
                    program = %program.name,
                    code = code.number(),
                    cause = %message,
                    "AML program failed; its fallback measure decides"
                );
                let fallback = self.run_fallback(&program.fallback, input.current)?;
                Ok(ProgramRun {
                    fallback_failed: fallback.is_none(),
                    outcome: fallback
                        .unwrap_or_else(|| investigate_with(input.current, &program.name)),
                    failure: Some((code, message)),
                })
            }
        }
    }

    fn try_program(&self, program: &Program, input: &RunInput<'_>) -> Result<AmlOutcome, Failure> {
        let has_context = |key: &String| input.context.and_then(|c| c.get(key)).is_some();
        if let Some(missing) = program.required_context.iter().find(|k| !has_context(k)) {
            return Err((
                ErrorCode::ExchangeKycGenericProviderIncompleteContext,
                format!("context lacks {missing}"),
            ));
        }
        let stored;
        let attributes = match input.attributes {
            Some(attributes) => attributes,
            None => {
                stored = self.newest_attributes(input.h_payto).map_err(internal)?;
                &stored
            }
        };
        if let Some(missing) = program
            .required_attributes
            .iter()
            .find(|a| !attributes.contains_key(a.as_str()))
        {
            return Err((
                ErrorCode::ExchangeKycGenericProviderIncompleteReply,
                format!("attributes lack {missing}"),
            ));
        }
        match &program.command {
            ProgramCommand::Builtin(builtin) => Ok(run_builtin(
                program,
                *builtin,
                input.current,
                self.clock.now(),
            )),
            ProgramCommand::External(command) => {
                let stdin = self
                    .program_input(program, input, attributes)
                    .map_err(internal)?;
                self.run_external(command, &stdin)
            }
        }
    }

    /// The `AmlProgramInput` of §5.3: only what the program asked for.
    fn program_input(
        &self,
        program: &Program,
        input: &RunInput<'_>,
        attributes: &Attributes,
    ) -> Result<Value, TalerError> {
        let mut object = Map::new();
        for wanted in &program.required_inputs {
            let (name, value) = match wanted {
                ProgramInput::Context => ("context", input.context.cloned()),
                ProgramInput::Attributes => ("attributes", Some(Value::Object(attributes.clone()))),
                ProgramInput::CurrentRules => ("current_rules", Some(to_json(input.current)?)),
                ProgramInput::DefaultRules => (
                    "default_rules",
                    Some(to_json(&self.rules.default_rule_set())?),
                ),
                ProgramInput::AmlHistory(n) => (
                    "aml_history",
                    Some(Value::Array(window(
                        self.aml_history_json(input.h_payto)?,
                        *n,
                    ))),
                ),
                ProgramInput::KycHistory(n) => (
                    "kyc_history",
                    Some(Value::Array(window(
                        self.kyc_history_json(input.h_payto)?,
                        *n,
                    ))),
                ),
            };
            if let Some(value) = value.filter(|v| !v.is_null()) {
                object.insert(name.to_owned(), value);
            }
        }
        Ok(Value::Object(object))
    }

    fn aml_history_json(&self, h_payto: &NormalizedPaytoHash) -> Result<Vec<Value>, TalerError> {
        Ok(self
            .store
            .aml_history(h_payto)?
            .into_iter()
            .map(|entry| {
                let mut value = json!({
                    "decision_time": entry.decision_time,
                    "justification": entry.justification,
                    "decider_pub": entry.decider_pub,
                    "new_rules": entry.new_rules,
                    "to_investigate": entry.to_investigate,
                    "is_active": entry.is_active,
                });
                if let (Some(properties), Some(object)) = (entry.properties, value.as_object_mut())
                {
                    object.insert("properties".to_owned(), properties);
                }
                value
            })
            .collect())
    }

    fn kyc_history_json(&self, h_payto: &NormalizedPaytoHash) -> Result<Vec<Value>, TalerError> {
        Ok(self
            .store
            .kyc_history(h_payto)?
            .into_iter()
            .map(|entry| {
                let mut value = json!({
                    "provider_name": entry.provider_name,
                    "finished": entry.finished,
                    "code": entry.error_code,
                    "hint": ErrorCode::from_number(entry.error_code).map_or("", |c| c.short_name()),
                    "collection_time": entry.collection_time,
                    "expiration_time": entry.expiration_time,
                });
                if let Some(object) = value.as_object_mut() {
                    let optional = [
                        ("error_message", entry.error_message),
                        ("provider_user_id", entry.provider_user_id),
                        (
                            "provider_legitimization_id",
                            entry.provider_legitimization_id,
                        ),
                    ];
                    for (name, text) in optional {
                        if let Some(text) = text {
                            object.insert(name.to_owned(), Value::String(text));
                        }
                    }
                    if let Some(attributes) = self.cipher.open(&entry.encrypted) {
                        object.insert("attributes".to_owned(), Value::Object(attributes));
                    }
                }
                value
            })
            .collect())
    }

    fn newest_attributes(&self, h_payto: &NormalizedPaytoHash) -> Result<Attributes, TalerError> {
        Ok(self
            .store
            .newest_attributes(h_payto)?
            .and_then(|blob| self.cipher.open(&blob))
            .unwrap_or_default())
    }

    /// `COMMAND -c CFG` with `input` on standard input, its output checked (§5.4).
    fn run_external(&self, command: &str, input: &Value) -> Result<AmlOutcome, Failure> {
        let timeout = Duration::from_micros(self.rules.max_program_runtime.as_micros());
        let stdin = input.to_string().into_bytes();
        let output = self
            .programs
            .run(&self.program_argv(command, None), &stdin, timeout)
            .map_err(|e| match e {
                ProgramRunError::Timeout(_) => (
                    ErrorCode::ExchangeKycGenericAmlProgramTimeout,
                    e.to_string(),
                ),
                ProgramRunError::OutputTooLarge(_) => (
                    ErrorCode::ExchangeKycAmlProgramMalformedResult,
                    e.to_string(),
                ),
                ProgramRunError::Failed(_) | ProgramRunError::Spawn(_) => {
                    (ErrorCode::ExchangeKycAmlProgramFailure, e.to_string())
                }
            })?;
        self.parse_outcome(&output)
            .map_err(|message| (ErrorCode::ExchangeKycAmlProgramMalformedResult, message))
    }

    /// The argv of an external program: `COMMAND` split on spaces, then `[flag] -c CFG`.
    pub fn program_argv(&self, command: &str, flag: Option<&str>) -> Vec<String> {
        let mut argv: Vec<String> = command
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        argv.extend(flag.map(str::to_owned));
        if let Some(config) = &self.program_config {
            argv.push("-c".to_owned());
            argv.push(config.clone());
        }
        argv
    }

    /// An `AmlOutcome` as a program printed it.
    pub fn parse_outcome(&self, output: &[u8]) -> Result<AmlOutcome, String> {
        let json = CanonicalJson::parse(output).map_err(|e| format!("output: {e}"))?;
        let CanonicalJson::Object(members) = &json else {
            return Err("output is not a JSON object".to_owned());
        };
        let present = |name: &str| members.get(name).filter(|v| **v != CanonicalJson::Null);
        let rules = present("new_rules").ok_or("new_rules: missing")?;
        let new_rules = self
            .rules
            .parse_rule_set(rules, "new_rules")
            .map_err(|e| e.to_string())?;
        let to_investigate = match present("to_investigate") {
            None => false,
            Some(CanonicalJson::Bool(b)) => *b,
            Some(_) => return Err("to_investigate: must be a boolean".to_owned()),
        };
        let properties = match present("properties") {
            None => None,
            Some(p @ CanonicalJson::Object(_)) => Some(p.to_value()),
            Some(_) => return Err("properties: must be an object".to_owned()),
        };
        let events = match present("events") {
            None => Vec::new(),
            Some(CanonicalJson::Array(items)) => items
                .iter()
                .map(|item| match item {
                    CanonicalJson::String(s) => Ok(s.clone()),
                    _ => Err("events: must be strings".to_owned()),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("events: must be an array".to_owned()),
        };
        check_event_names(&events).map_err(|e| e.to_string())?;
        Ok(AmlOutcome {
            to_investigate,
            properties,
            events,
            new_rules,
        })
    }

    /// The fallback measure's program over input `{}` (§5.5); `None` when it failed too.
    fn run_fallback(
        &self,
        fallback: &str,
        current: &LegitimizationRuleSet,
    ) -> Result<Option<NewOutcome>, TalerError> {
        let unknown = || {
            error(
                ErrorCode::ExchangeGenericKycFallbackUnknown,
                "fallback measure unknown",
            )
            .with_detail(fallback.to_owned())
        };
        let measure = self.rules.measures.get(fallback).ok_or_else(unknown)?;
        let program = self
            .rules
            .programs
            .get(&measure.program)
            .ok_or_else(unknown)?;
        let outcome = match &program.command {
            ProgramCommand::Builtin(builtin) => {
                Ok(run_builtin(program, *builtin, current, self.clock.now()))
            }
            ProgramCommand::External(command) => self.run_external(command, &json!({})),
        };
        match outcome {
            Ok(outcome) => Ok(Some(new_outcome(outcome, &program.name))),
            Err((code, message)) => {
                tracing::error!(
                    measure = fallback,
                    code = code.number(),
                    cause = %message,
                    "the fallback AML program failed too; the rules stay, flagged for investigation"
                );
                Ok(None)
            }
        }
    }

    /// `talerbox aml program test`: runs program `name` over `input` as the server would,
    /// without the database and without the fallback.
    pub fn test_program(&self, name: &str, input: &Value) -> Result<AmlOutcome, TalerError> {
        let program = self
            .rules
            .programs
            .get(&name.to_ascii_lowercase())
            .ok_or_else(|| {
                error(
                    ErrorCode::ExchangeKycGenericAmlProgramGone,
                    "no such AML program",
                )
                .with_detail(name.to_owned())
            })?;
        let fail = |(code, message): Failure| TalerError::new(code).with_detail(message);
        match &program.command {
            ProgramCommand::Builtin(builtin) => {
                let current = match input.get("current_rules") {
                    Some(rules) => {
                        let json = CanonicalJson::parse(rules.to_string().as_bytes())
                            .map_err(|e| fail((ErrorCode::GenericJsonInvalid, e.to_string())))?;
                        self.rules
                            .parse_rule_set(&json, "current_rules")
                            .map_err(|e| {
                                fail((ErrorCode::GenericParameterMalformed, e.to_string()))
                            })?
                    }
                    None => self.rules.default_rule_set(),
                };
                if *builtin == BuiltinProgram::Accept || *builtin == BuiltinProgram::Freeze {
                    let attributes = input.get("attributes").and_then(Value::as_object);
                    if let Some(missing) = program
                        .required_attributes
                        .iter()
                        .find(|a| !attributes.is_some_and(|m| m.contains_key(a.as_str())))
                    {
                        return Err(fail((
                            ErrorCode::ExchangeKycGenericProviderIncompleteReply,
                            format!("attributes lack {missing}"),
                        )));
                    }
                }
                Ok(run_builtin(program, *builtin, &current, self.clock.now()))
            }
            ProgramCommand::External(command) => self.run_external(command, input).map_err(fail),
        }
    }
}

/// `[N]` of a history input: N > 0 the N oldest, N < 0 the |N| newest (lists are newest
/// first).
fn window(mut entries: Vec<Value>, n: Option<i64>) -> Vec<Value> {
    match n {
        None => entries,
        Some(n) if n < 0 => {
            entries.truncate(usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX));
            entries
        }
        Some(n) => {
            let keep = usize::try_from(n).unwrap_or(usize::MAX);
            let skip = entries.len().saturating_sub(keep);
            entries.split_off(skip)
        }
    }
}

/// After a failed fallback: keep the rules, flag the account (§5.5 [D]).
fn investigate_with(current: &LegitimizationRuleSet, program: &str) -> NewOutcome {
    NewOutcome {
        program: program.to_owned(),
        expiration_time: current.expiration_time,
        properties: None,
        to_investigate: true,
        new_rules: current.clone(),
        events: Vec::new(),
    }
}

fn to_json(rules: &LegitimizationRuleSet) -> Result<Value, TalerError> {
    serde_json::to_value(rules).map_err(|e| {
        TalerError::new(ErrorCode::GenericInternalInvariantFailure).with_detail(e.to_string())
    })
}

fn internal(error: TalerError) -> Failure {
    (error.code, error.detail.clone().unwrap_or_default())
}

pub(super) fn new_outcome(outcome: AmlOutcome, program: &str) -> NewOutcome {
    NewOutcome {
        program: program.to_owned(),
        expiration_time: outcome.new_rules.expiration_time,
        properties: outcome.properties,
        to_investigate: outcome.to_investigate,
        new_rules: outcome.new_rules,
        events: outcome.events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_run_per_account_at_a_time() {
        let locks = Arc::new(AccountLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let account = NormalizedPaytoHash([1; 32]);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    locks.exclusive(&account, || {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                        inside.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert!(locks.locks.lock().unwrap().is_empty(), "no lock is kept");
    }

    #[test]
    fn history_windows() {
        let entries: Vec<Value> = (0..5).map(|n| json!(n)).collect();
        assert_eq!(window(entries.clone(), None).len(), 5);
        assert_eq!(window(entries.clone(), Some(-2)), vec![json!(0), json!(1)]);
        assert_eq!(window(entries.clone(), Some(2)), vec![json!(3), json!(4)]);
        assert_eq!(window(entries, Some(9)).len(), 5);
    }
}
