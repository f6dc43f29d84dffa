//! The JSON shapes of measures and rule sets as stored and answered (exchange-kyc spec §2.2),
//! the default rule set, and the built-in AML programs (spec §8).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{BuiltinProgram, KycRules, MeasureSpec, OperationType, Program};
use crate::domain::primitives::{Amount, RelativeTime, Timestamp};

/// One measure of an open set, as stored in `jmeasures` and shown to officers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureInformation {
    pub check_name: String,
    pub prog_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_type: Option<OperationType>,
}

/// `jmeasures`: the set of measures a customer must satisfy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegitimizationMeasures {
    pub measures: Vec<MeasureInformation>,
    pub is_and_combinator: bool,
    pub verboten: bool,
}

/// A rule of a rule set (`KycRule`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KycRule {
    pub operation_type: OperationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    pub threshold: Amount,
    pub timeframe: RelativeTime,
    pub measures: Vec<String>,
    pub display_priority: u32,
    #[serde(default)]
    pub exposed: bool,
    #[serde(default)]
    pub is_and_combinator: bool,
}

/// A measure defined inside a rule set rather than in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomMeasure {
    pub check_name: String,
    pub prog_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voluntary: Option<bool>,
}

/// `LegitimizationRuleSet`: an account's rules after a decision or program outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegitimizationRuleSet {
    pub expiration_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor_measure: Option<String>,
    pub rules: Vec<KycRule>,
    #[serde(default)]
    pub custom_measures: BTreeMap<String, CustomMeasure>,
}

/// What an AML program decides (`AmlOutcome`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmlOutcome {
    #[serde(default)]
    pub to_investigate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    pub new_rules: LegitimizationRuleSet,
}

impl KycRules {
    /// The rule set of an account without decisions: every enabled rule, no expiry.
    pub fn default_rule_set(&self) -> LegitimizationRuleSet {
        LegitimizationRuleSet {
            expiration_time: Timestamp::never(),
            successor_measure: None,
            rules: self
                .rules
                .iter()
                .map(|rule| KycRule {
                    operation_type: rule.operation_type,
                    rule_name: Some(rule.name.clone()),
                    threshold: rule.threshold.clone(),
                    timeframe: rule.timeframe,
                    measures: measure_names(&rule.measures),
                    display_priority: rule.display_priority,
                    exposed: rule.exposed,
                    is_and_combinator: rule.measures.is_and_combinator,
                })
                .collect(),
            custom_measures: BTreeMap::new(),
        }
    }

    /// The measures named by `spec`, resolved in `custom` first, then in the configuration.
    /// `None` names an unknown measure.
    pub fn resolve(
        &self,
        spec: &MeasureSpec,
        custom: &BTreeMap<String, CustomMeasure>,
    ) -> Option<LegitimizationMeasures> {
        let measures = spec
            .measures
            .iter()
            .map(|name| self.measure_information(name, custom))
            .collect::<Option<Vec<_>>>()?;
        Some(LegitimizationMeasures {
            measures,
            is_and_combinator: spec.is_and_combinator,
            verboten: spec.verboten,
        })
    }

    pub(super) fn measure_information(
        &self,
        name: &str,
        custom: &BTreeMap<String, CustomMeasure>,
    ) -> Option<MeasureInformation> {
        if let Some(measure) = self.custom_measure(name, custom) {
            return Some(MeasureInformation {
                check_name: measure.check_name.to_ascii_lowercase(),
                prog_name: measure.prog_name.to_ascii_lowercase(),
                context: measure.context.clone(),
                rule_name: None,
                operation_type: None,
            });
        }
        let measure = self.measures.get(&name.to_ascii_lowercase())?;
        Some(MeasureInformation {
            check_name: measure.check_name.clone(),
            prog_name: measure.program.clone(),
            context: Some(measure.context.clone()),
            rule_name: None,
            operation_type: None,
        })
    }

    /// Measures of exposed, not forbidden rules with a zero threshold: due right away.
    pub fn zero_threshold_measures(
        &self,
        rules: &LegitimizationRuleSet,
    ) -> Option<LegitimizationMeasures> {
        let mut measures = Vec::new();
        for rule in rules
            .rules
            .iter()
            .filter(|r| r.exposed && r.threshold.is_zero())
        {
            if rule
                .measures
                .iter()
                .any(|m| m.eq_ignore_ascii_case(super::model::VERBOTEN))
            {
                continue;
            }
            for name in &rule.measures {
                let Some(mut info) = self.measure_information(name, &rules.custom_measures) else {
                    continue;
                };
                info.rule_name = rule.rule_name.clone();
                info.operation_type = Some(rule.operation_type);
                if !measures.contains(&info) {
                    measures.push(info);
                }
            }
        }
        (!measures.is_empty()).then_some(LegitimizationMeasures {
            measures,
            is_and_combinator: false,
            verboten: false,
        })
    }
}

fn measure_names(spec: &MeasureSpec) -> Vec<String> {
    let mut names = spec.measures.clone();
    if spec.verboten {
        names.push(super::model::VERBOTEN.to_owned());
    }
    names
}

/// Runs a built-in AML program (spec §8) at `now` over the account's `current` rules.
pub fn run_builtin(
    program: &Program,
    builtin: BuiltinProgram,
    current: &LegitimizationRuleSet,
    now: Timestamp,
) -> AmlOutcome {
    let year = RelativeTime::from_seconds(365 * 24 * 60 * 60);
    let every_operation = |threshold: &Amount| -> Vec<KycRule> {
        OperationType::ALL
            .into_iter()
            .map(|operation_type| KycRule {
                operation_type,
                rule_name: None,
                threshold: threshold.clone(),
                timeframe: RelativeTime::from_seconds(30 * 24 * 60 * 60),
                measures: vec![super::model::VERBOTEN.to_owned()],
                display_priority: 0,
                exposed: true,
                is_and_combinator: false,
            })
            .collect()
    };
    let rule_set = |rules, expiration_time| LegitimizationRuleSet {
        expiration_time,
        successor_measure: None,
        rules,
        custom_measures: BTreeMap::new(),
    };
    match builtin {
        BuiltinProgram::Accept => AmlOutcome {
            to_investigate: false,
            properties: None,
            events: Vec::new(),
            new_rules: rule_set(every_operation(&program.limit), now.saturating_add(year)),
        },
        BuiltinProgram::Freeze => AmlOutcome {
            to_investigate: true,
            properties: None,
            events: Vec::new(),
            new_rules: rule_set(
                every_operation(&Amount::zero(program.limit.currency().clone())),
                Timestamp::never(),
            ),
        },
        BuiltinProgram::None => AmlOutcome {
            to_investigate: true,
            properties: None,
            events: Vec::new(),
            new_rules: current.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::kyc::{Measure, ProgramCommand, Rule};

    fn kudos(text: &str) -> Amount {
        text.parse().unwrap()
    }

    fn vocabulary(threshold: &str, exposed: bool) -> KycRules {
        let mut rules = KycRules::default();
        rules.measures.insert(
            "email".into(),
            Measure {
                name: "email".into(),
                check_name: "email".into(),
                program: "accept".into(),
                context: serde_json::json!({"initial_address": {"CONTACT_EMAIL": "x@y.z"}}),
                voluntary: false,
            },
        );
        rules.rules.push(Rule {
            name: "withdraw".into(),
            operation_type: OperationType::Withdraw,
            threshold: kudos(threshold),
            timeframe: RelativeTime::from_seconds(60),
            measures: MeasureSpec::parse("email"),
            exposed,
            display_priority: 1,
        });
        rules
    }

    fn program() -> Program {
        Program {
            name: "accept".into(),
            command: ProgramCommand::Builtin(BuiltinProgram::Accept),
            description: String::new(),
            fallback: "freeze".into(),
            required_attributes: Vec::new(),
            required_context: Vec::new(),
            required_inputs: Vec::new(),
            limit: kudos("KUDOS:10000"),
        }
    }

    #[test]
    fn resolving_specs_and_unknown_names() {
        let rules = vocabulary("KUDOS:10", true);
        let set = rules
            .resolve(&MeasureSpec::parse("+ email"), &BTreeMap::new())
            .unwrap();
        assert!(set.is_and_combinator);
        assert_eq!(set.measures[0].check_name, "email");
        assert_eq!(set.measures[0].prog_name, "accept");
        assert!(
            rules
                .resolve(&MeasureSpec::parse("nope"), &BTreeMap::new())
                .is_none()
        );
    }

    #[test]
    fn only_exposed_zero_thresholds_are_due_at_once() {
        assert!(
            vocabulary("KUDOS:10", true)
                .zero_threshold_measures(&vocabulary("KUDOS:10", true).default_rule_set())
                .is_none()
        );
        let hidden = vocabulary("KUDOS:0", false);
        assert!(
            hidden
                .zero_threshold_measures(&hidden.default_rule_set())
                .is_none()
        );
        let due = vocabulary("KUDOS:0", true);
        let set = due
            .zero_threshold_measures(&due.default_rule_set())
            .unwrap();
        assert_eq!(set.measures.len(), 1);
        assert_eq!(set.measures[0].rule_name.as_deref(), Some("withdraw"));
        assert_eq!(
            set.measures[0].operation_type,
            Some(OperationType::Withdraw)
        );
    }

    #[test]
    fn builtin_programs() {
        let now = Timestamp::from_seconds(1_000_000).unwrap();
        let current = vocabulary("KUDOS:10", true).default_rule_set();
        let accept = run_builtin(&program(), BuiltinProgram::Accept, &current, now);
        assert!(!accept.to_investigate);
        assert_eq!(accept.new_rules.rules.len(), OperationType::ALL.len());
        assert!(
            accept
                .new_rules
                .rules
                .iter()
                .all(|r| r.threshold == kudos("KUDOS:10000") && r.measures == ["verboten"])
        );
        assert_eq!(
            accept.new_rules.expiration_time.as_seconds(),
            Some(1_000_000 + 365 * 86_400)
        );
        let freeze = run_builtin(&program(), BuiltinProgram::Freeze, &current, now);
        assert!(freeze.to_investigate && freeze.new_rules.expiration_time.is_never());
        assert!(freeze.new_rules.rules.iter().all(|r| r.threshold.is_zero()));
        let none = run_builtin(&program(), BuiltinProgram::None, &current, now);
        assert!(none.to_investigate);
        assert_eq!(none.new_rules, current);
        // The outcome has the wire shape of AmlOutcome.
        let json = serde_json::to_value(&accept).unwrap();
        assert_eq!(json["new_rules"]["rules"][0]["operation_type"], "WITHDRAW");
        assert_eq!(
            json["new_rules"]["rules"][0]["timeframe"],
            serde_json::json!({"d_us": 2_592_000_000_000u64})
        );
    }
}
