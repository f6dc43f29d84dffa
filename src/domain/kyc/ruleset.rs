//! Rule sets and measure strings that come from outside the configuration: an officer's
//! decision or an AML program's outcome (exchange-aml-decisions.md §3.2–§3.3). Every name
//! must resolve, every program's requirements must be met, or the set is refused with the
//! path of the first offender.

use std::collections::BTreeMap;

use super::model::{KycRules, OperationType, SKIP, VERBOTEN};
use super::rules::{CustomMeasure, KycRule, LegitimizationMeasures, LegitimizationRuleSet};
use crate::domain::primitives::canonical_json::CanonicalJson;
use crate::domain::primitives::{Amount, RelativeTime, Timestamp};

/// Why a rule set or measure string was refused: `path` names the offending member (as
/// `new_rules.rules[1].threshold`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct RuleSetError {
    pub path: String,
    pub problem: String,
}

fn refuse<T>(path: impl Into<String>, problem: impl Into<String>) -> Result<T, RuleSetError> {
    Err(RuleSetError {
        path: path.into(),
        problem: problem.into(),
    })
}

type Members = BTreeMap<String, CanonicalJson>;

fn object<'a>(value: &'a CanonicalJson, path: &str) -> Result<&'a Members, RuleSetError> {
    value
        .as_object()
        .map_or_else(|| refuse(path, "must be an object"), Ok)
}

/// A member that may be missing or `null`.
fn optional<'a>(members: &'a Members, name: &str) -> Option<&'a CanonicalJson> {
    members.get(name).filter(|v| **v != CanonicalJson::Null)
}

fn required<'a>(
    members: &'a Members,
    name: &str,
    path: &str,
) -> Result<&'a CanonicalJson, RuleSetError> {
    optional(members, name).map_or_else(|| refuse(format!("{path}.{name}"), "missing"), Ok)
}

fn string<'a>(value: &'a CanonicalJson, path: &str) -> Result<&'a str, RuleSetError> {
    match value {
        CanonicalJson::String(s) => Ok(s),
        _ => refuse(path, "must be a string"),
    }
}

fn boolean(members: &Members, name: &str, path: &str) -> Result<bool, RuleSetError> {
    match optional(members, name) {
        None => Ok(false),
        Some(CanonicalJson::Bool(b)) => Ok(*b),
        Some(_) => refuse(format!("{path}.{name}"), "must be a boolean"),
    }
}

/// A member decoded by its serde form (timestamps, durations).
fn decoded<T: serde::de::DeserializeOwned>(
    value: &CanonicalJson,
    path: &str,
) -> Result<T, RuleSetError> {
    serde_json::from_value(value.to_value()).or_else(|e| refuse(path, e.to_string()))
}

impl KycRules {
    /// Validates a `LegitimizationRuleSet` (§3.2); `path` prefixes error paths.
    pub fn parse_rule_set(
        &self,
        value: &CanonicalJson,
        path: &str,
    ) -> Result<LegitimizationRuleSet, RuleSetError> {
        let members = object(value, path)?;
        let expiration_time: Timestamp = decoded(
            required(members, "expiration_time", path)?,
            &format!("{path}.expiration_time"),
        )?;
        let successor_measure = optional(members, "successor_measure")
            .map(|v| string(v, &format!("{path}.successor_measure")).map(str::to_owned))
            .transpose()?;
        let custom_path = format!("{path}.custom_measures");
        let mut custom_measures = BTreeMap::new();
        for (name, measure) in object(required(members, "custom_measures", path)?, &custom_path)? {
            let measure_path = format!("{custom_path}.{name}");
            let measure = self.parse_custom_measure(measure, &measure_path)?;
            custom_measures.insert(name.clone(), measure);
        }
        let rules_path = format!("{path}.rules");
        let CanonicalJson::Array(items) = required(members, "rules", path)? else {
            return refuse(rules_path, "must be an array");
        };
        let rules = items
            .iter()
            .enumerate()
            .map(|(i, rule)| self.parse_rule(rule, &format!("{rules_path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let set = LegitimizationRuleSet {
            expiration_time,
            successor_measure,
            rules,
            custom_measures,
        };
        self.check_names_resolve(&set, path)?;
        Ok(set)
    }

    fn parse_rule(&self, value: &CanonicalJson, path: &str) -> Result<KycRule, RuleSetError> {
        let members = object(value, path)?;
        let field = |name: &str| format!("{path}.{name}");
        let operation = string(
            required(members, "operation_type", path)?,
            &field("operation_type"),
        )?;
        let operation_type = OperationType::parse(operation).map_or_else(
            || refuse(field("operation_type"), "unknown operation type"),
            Ok,
        )?;
        let threshold: Amount = string(required(members, "threshold", path)?, &field("threshold"))?
            .parse()
            .or_else(|e: crate::domain::primitives::AmountError| {
                refuse(field("threshold"), e.to_string())
            })?;
        if threshold.currency().as_str() != self.currency {
            return refuse(field("threshold"), format!("must be in {}", self.currency));
        }
        let timeframe: RelativeTime =
            decoded(required(members, "timeframe", path)?, &field("timeframe"))?;
        let CanonicalJson::Array(names) = required(members, "measures", path)? else {
            return refuse(field("measures"), "must be an array");
        };
        let measures = names
            .iter()
            .enumerate()
            .map(|(i, n)| string(n, &format!("{path}.measures[{i}]")).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        let display_priority = match required(members, "display_priority", path)? {
            CanonicalJson::Integer(n) => u32::try_from(*n).ok(),
            _ => None,
        }
        .map_or_else(
            || {
                refuse(
                    field("display_priority"),
                    "must be an integer from 0 to 2^32-1",
                )
            },
            Ok,
        )?;
        let rule_name = optional(members, "rule_name")
            .map(|v| string(v, &field("rule_name")).map(str::to_owned))
            .transpose()?;
        Ok(KycRule {
            operation_type,
            rule_name,
            threshold,
            timeframe,
            measures,
            display_priority,
            exposed: boolean(members, "exposed", path)?,
            is_and_combinator: boolean(members, "is_and_combinator", path)?,
        })
    }

    fn parse_custom_measure(
        &self,
        value: &CanonicalJson,
        path: &str,
    ) -> Result<CustomMeasure, RuleSetError> {
        let members = object(value, path)?;
        let field = |name: &str| format!("{path}.{name}");
        let check_name = string(required(members, "check_name", path)?, &field("check_name"))?;
        let prog_name = string(required(members, "prog_name", path)?, &field("prog_name"))?;
        let context = optional(members, "context")
            .map(|c| object(c, &field("context")).map(|_| c.to_value()))
            .transpose()?;
        let voluntary = match optional(members, "voluntary") {
            None => None,
            Some(CanonicalJson::Bool(b)) => Some(*b),
            Some(_) => return refuse(field("voluntary"), "must be a boolean"),
        };
        let measure = CustomMeasure {
            check_name: check_name.to_owned(),
            prog_name: prog_name.to_owned(),
            context,
            voluntary,
        };
        self.check_measure_requirements(
            &measure.check_name,
            &measure.prog_name,
            measure.context.as_ref(),
            path,
        )?;
        Ok(measure)
    }

    /// A measure's program exists and gets what it needs: its context keys, and attributes
    /// the check delivers; the check's own context keys are there too.
    pub(super) fn check_measure_requirements(
        &self,
        check_name: &str,
        prog_name: &str,
        context: Option<&serde_json::Value>,
        path: &str,
    ) -> Result<(), RuleSetError> {
        let has_key = |key: &str| context.and_then(|c| c.get(key)).is_some();
        let Some(program) = self.programs.get(&prog_name.to_ascii_lowercase()) else {
            return refuse(
                format!("{path}.prog_name"),
                format!("no AML program {prog_name}"),
            );
        };
        if let Some(missing) = program.required_context.iter().find(|k| !has_key(k)) {
            return refuse(
                format!("{path}.context"),
                format!("program {prog_name} needs the context key {missing}"),
            );
        }
        if check_name.eq_ignore_ascii_case(SKIP) {
            if !program.required_attributes.is_empty() {
                return refuse(
                    format!("{path}.check_name"),
                    format!("program {prog_name} needs attributes, which SKIP does not collect"),
                );
            }
            return Ok(());
        }
        let Some(check) = self.checks.get(&check_name.to_ascii_lowercase()) else {
            return refuse(
                format!("{path}.check_name"),
                format!("no check {check_name}"),
            );
        };
        if let Some(missing) = program
            .required_attributes
            .iter()
            .find(|a| !check.outputs.iter().any(|o| o.eq_ignore_ascii_case(a)))
        {
            return refuse(
                format!("{path}.check_name"),
                format!("check {check_name} does not collect {missing}"),
            );
        }
        if let Some(missing) = check.requires.iter().find(|k| !has_key(k)) {
            return refuse(
                format!("{path}.context"),
                format!("check {check_name} needs the context key {missing}"),
            );
        }
        Ok(())
    }

    fn check_names_resolve(
        &self,
        set: &LegitimizationRuleSet,
        path: &str,
    ) -> Result<(), RuleSetError> {
        let known = |name: &str| {
            name.eq_ignore_ascii_case(VERBOTEN)
                || self.custom_measure(name, &set.custom_measures).is_some()
                || self.measures.contains_key(&name.to_ascii_lowercase())
        };
        for (i, rule) in set.rules.iter().enumerate() {
            for (j, name) in rule.measures.iter().enumerate() {
                if !known(name) {
                    return refuse(
                        format!("{path}.rules[{i}].measures[{j}]"),
                        format!("no measure {name}"),
                    );
                }
            }
        }
        if let Some(successor) = &set.successor_measure
            && !known(successor)
        {
            return refuse(
                format!("{path}.successor_measure"),
                format!("no measure {successor}"),
            );
        }
        Ok(())
    }

    /// A custom measure by case-insensitive name.
    pub(super) fn custom_measure<'a>(
        &self,
        name: &str,
        custom: &'a BTreeMap<String, CustomMeasure>,
    ) -> Option<&'a CustomMeasure> {
        custom
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, measure)| measure)
    }

    /// An officer's `new_measures` (§3.3): `None` when it names no measure at all.
    pub fn resolve_new_measures(
        &self,
        text: &str,
        custom: &BTreeMap<String, CustomMeasure>,
    ) -> Result<Option<LegitimizationMeasures>, RuleSetError> {
        let (is_and_combinator, rest) = match text.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut verboten = false;
        let mut measures = Vec::new();
        for token in rest.split(' ').filter(|t| !t.is_empty()) {
            if token.eq_ignore_ascii_case(VERBOTEN) {
                verboten = true;
                continue;
            }
            let Some(info) = self.measure_information(token, custom) else {
                return refuse("new_measures", format!("no measure {token}"));
            };
            measures.push(info);
        }
        let skips = measures
            .iter()
            .filter(|m| m.check_name.eq_ignore_ascii_case(SKIP))
            .count();
        if skips > 1 {
            return refuse("new_measures", "at most one measure may skip the check");
        }
        if measures.is_empty() {
            return Ok(None);
        }
        Ok(Some(LegitimizationMeasures {
            measures,
            is_and_combinator,
            verboten,
        }))
    }
}

/// Event names (§3.6 step 5): 1–64 bytes of printable ASCII without space.
pub fn check_event_names(events: &[String]) -> Result<(), RuleSetError> {
    for (i, name) in events.iter().enumerate() {
        let printable = name.bytes().all(|b| b.is_ascii_graphic());
        if name.is_empty() || name.len() > 64 || !printable {
            return refuse(
                format!("events[{i}]"),
                "an event name is 1 to 64 printable ASCII characters without space",
            );
        }
    }
    Ok(())
}
