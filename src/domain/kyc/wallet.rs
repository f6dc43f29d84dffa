//! How wallets and merchants enter KYC: `POST /kyc-wallet` (a wallet registers its reserve key
//! and balance, which BALANCE rules test) and `GET /kyc-check` (an account owner, signing with
//! its key, learns its access token and limits) — exchange-kyc spec §8.1, docs/api-coverage.md.

use serde::Serialize;

use super::model::{MeasureSpec, OperationType, SKIP, VERBOTEN};
use super::requirement::AccessToken;
use super::rules::{KycRule, LegitimizationMeasures, LegitimizationRuleSet};
use super::service::{KycService, error};
use crate::domain::evidence::RequirementTrigger;
use crate::domain::primitives::{
    Amount, EddsaPublicKey, EddsaSignature, ErrorCode, NormalizedPaytoHash, Payto, RelativeTime,
    TalerError, Timestamp, purpose, verify_purpose,
};
use crate::ports::kyc::{ActivateMeasures, RecordAccountKey};
use crate::ports::random::random_bytes;

/// Instant measures run in a row before the rules are declared recursive.
const MAX_INSTANT_ROUNDS: usize = 8;

/// A wallet's registration (`POST /kyc-wallet`), parsed.
#[derive(Debug, Clone)]
pub struct WalletRegistration {
    pub reserve_pub: EddsaPublicKey,
    pub reserve_sig: EddsaSignature,
    pub balance: Amount,
}

/// What `POST /kyc-wallet` answers.
#[derive(Debug, Clone, PartialEq)]
pub enum WalletAnswer {
    /// No BALANCE rule is crossed (200).
    Allowed {
        expiration_time: Timestamp,
        next_threshold: Option<Amount>,
    },
    /// A BALANCE rule is crossed: its measures are open (451 with code 1028).
    KycRequired {
        h_payto: NormalizedPaytoHash,
        /// The key the account had before this request, as the exchange reports it.
        account_pub: Option<EddsaPublicKey>,
        requirement_row: u64,
    },
}

/// One exposed rule as `GET /kyc-check` lists it (`AccountLimit`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountLimit {
    pub operation_type: OperationType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    pub timeframe: RelativeTime,
    pub threshold: Amount,
    /// The rule can be lifted by KYC (it is not `verboten`).
    pub soft_limit: bool,
}

/// The KYC state an authenticated account owner sees.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountStatus {
    pub aml_review: bool,
    pub access_token: String,
    pub limits: Vec<AccountLimit>,
    /// A measure is open (202 rather than 200).
    #[serde(skip)]
    pub kyc_required: bool,
}

/// What `GET /kyc-check` finds for an account and a signature.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCheck {
    /// No such account (404/1939).
    Unknown,
    /// The account has no key (409/1940).
    NoKey,
    /// The signature is not by the account's key (403/1930).
    WrongKey {
        expected: EddsaPublicKey,
    },
    Authorized(AccountStatus),
}

/// What a long poll of `GET /kyc-check` waits for (`lpt`); other numbers mean none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongPollTarget {
    None,
    /// The account's key becomes known (1: the KYC auth transfer).
    KycAuthTransfer,
    /// The AML investigation is done (2).
    InvestigationDone,
    /// No measure is open any more (3).
    KycOk,
}

impl LongPollTarget {
    pub fn from_number(number: u64) -> LongPollTarget {
        match number {
            1 => LongPollTarget::KycAuthTransfer,
            2 => LongPollTarget::InvestigationDone,
            3 => LongPollTarget::KycOk,
            _ => LongPollTarget::None,
        }
    }

    /// Whether a long poll for this target goes on waiting after finding `check`.
    pub fn keeps_waiting(self, check: &AccountCheck) -> bool {
        match (self, check) {
            (LongPollTarget::None, _) => false,
            // An account may still appear through a transfer or an investigation.
            (
                LongPollTarget::KycAuthTransfer | LongPollTarget::InvestigationDone,
                AccountCheck::Unknown,
            ) => true,
            (LongPollTarget::KycOk, AccountCheck::Unknown) => false,
            // Only a wait for the key may go on without proof of owning it.
            (
                LongPollTarget::KycAuthTransfer,
                AccountCheck::NoKey | AccountCheck::WrongKey { .. },
            ) => true,
            (_, AccountCheck::NoKey | AccountCheck::WrongKey { .. }) => false,
            (LongPollTarget::KycAuthTransfer, AccountCheck::Authorized(_)) => false,
            (LongPollTarget::InvestigationDone, AccountCheck::Authorized(status)) => {
                status.aml_review
            }
            (LongPollTarget::KycOk, AccountCheck::Authorized(status)) => status.kyc_required,
        }
    }
}

/// The BALANCE rule a wallet's balance crosses (the lowest threshold reached; of equal ones
/// the last), and the lowest BALANCE threshold it has not reached yet.
pub fn balance_rules<'r>(
    rules: &'r LegitimizationRuleSet,
    balance: &Amount,
) -> (Option<&'r KycRule>, Option<Amount>) {
    let mut crossed: Option<&KycRule> = None;
    let mut next: Option<&Amount> = None;
    let reached = |threshold: &Amount| {
        balance
            .cmp_same_currency(threshold)
            .is_ok_and(|order| order.is_ge())
    };
    let lower = |a: &Amount, b: &Amount| a.cmp_same_currency(b).is_ok_and(|o| o.is_lt());
    for rule in rules
        .rules
        .iter()
        .filter(|r| r.operation_type == OperationType::Balance)
    {
        if reached(&rule.threshold) {
            if crossed.is_none_or(|c| !lower(&c.threshold, &rule.threshold)) {
                crossed = Some(rule);
            }
        } else if rule.threshold.currency() == balance.currency()
            && next.is_none_or(|n| lower(&rule.threshold, n))
        {
            next = Some(&rule.threshold);
        }
    }
    (crossed, next.cloned())
}

/// The exposed rules of a rule set as account limits.
pub fn account_limits(rules: &LegitimizationRuleSet) -> Vec<AccountLimit> {
    rules
        .rules
        .iter()
        .filter(|rule| rule.exposed)
        .map(|rule| AccountLimit {
            operation_type: rule.operation_type,
            rule_name: rule.rule_name.clone(),
            timeframe: rule.timeframe,
            threshold: rule.threshold.clone(),
            soft_limit: !rule
                .measures
                .iter()
                .any(|m| m.eq_ignore_ascii_case(VERBOTEN)),
        })
        .collect()
}

impl KycService {
    /// POST /kyc-wallet: checks the signed balance, records the reserve key as the key of the
    /// wallet's account, and applies the account's BALANCE rules to the balance.
    pub fn kyc_wallet(&self, request: &WalletRegistration) -> Result<WalletAnswer, TalerError> {
        if request.balance.currency().as_str() != self.rules.currency {
            // The exchange's JSON parser refuses an amount in another currency.
            return Err(
                error(ErrorCode::GenericJsonInvalid, "balance: currency mismatch")
                    .with_detail("balance"),
            );
        }
        verify_purpose(
            &request.reserve_pub,
            purpose::WALLET_ACCOUNT_SETUP,
            &request.balance.to_nbo(),
            &request.reserve_sig,
        )
        .map_err(|_| {
            error(
                ErrorCode::ExchangeKycWalletSignatureInvalid,
                "reserve signature over the balance is invalid",
            )
        })?;
        if !self.enabled {
            return Ok(WalletAnswer::Allowed {
                expiration_time: Timestamp::never(),
                next_threshold: None,
            });
        }
        let payto = Payto::reserve(&self.base_url, &request.reserve_pub).map_err(|e| {
            error(
                ErrorCode::GenericInternalInvariantFailure,
                "exchange base URL yields no reserve payto",
            )
            .with_detail(e.to_string())
        })?;
        let h_payto = payto.h_normalized();
        let recorded = self.store.record_account_key(RecordAccountKey {
            h_payto,
            normalized_payto: payto.normalized().to_owned(),
            full_payto: Some(format!("{}?receiver-name=wallet", payto.normalized())),
            new_token: AccessToken(random_bytes(self.random.as_ref())),
            account_pub: request.reserve_pub,
            now: self.clock.now(),
        })?;
        // An instant (`SKIP`) measure runs its program at once and the new rules are tested
        // again, as the exchange does; a bounded number of times.
        for _ in 0..MAX_INSTANT_ROUNDS {
            let (_, rules) = self.current_rules(&h_payto)?;
            let (crossed, next_threshold) = balance_rules(&rules, &request.balance);
            let Some(rule) = crossed else {
                return Ok(WalletAnswer::Allowed {
                    expiration_time: rules.expiration_time,
                    next_threshold,
                });
            };
            let measures = self.rule_measures(rule, &rules)?;
            let instant = measures
                .measures
                .iter()
                .find(|m| !measures.verboten && m.check_name == SKIP);
            let opened = match instant {
                Some(instant) => LegitimizationMeasures {
                    measures: vec![instant.clone()],
                    is_and_combinator: false,
                    verboten: false,
                },
                None => measures.clone(),
            };
            let activated = self.store.activate_measures(ActivateMeasures {
                h_payto,
                normalized_payto: recorded.account.normalized_payto.clone(),
                full_payto: recorded.account.full_payto.clone(),
                new_token: recorded.account.access_token.clone(),
                account_pub: Some(request.reserve_pub),
                measures: opened.clone(),
                display_priority: rule.display_priority,
                trigger: RequirementTrigger::Rule,
                now: self.clock.now(),
            })?;
            if instant.is_some() {
                self.run_skipped_measures(&h_payto, activated.measure_serial, &opened)?;
                continue;
            }
            return Ok(WalletAnswer::KycRequired {
                h_payto,
                account_pub: recorded.previous,
                requirement_row: activated.measure_serial,
            });
        }
        Err(error(
            ErrorCode::ExchangeKycRecursiveRuleDetected,
            "instant measures kept triggering each other",
        ))
    }

    /// The measures a crossed rule opens: none when it is forbidden, else its measures
    /// resolved in the rule set's custom measures, then the configured ones.
    fn rule_measures(
        &self,
        rule: &KycRule,
        rules: &LegitimizationRuleSet,
    ) -> Result<LegitimizationMeasures, TalerError> {
        let spec = MeasureSpec {
            measures: rule.measures.clone(),
            is_and_combinator: rule.is_and_combinator,
            verboten: false,
        };
        if rule
            .measures
            .iter()
            .any(|m| m.eq_ignore_ascii_case(VERBOTEN))
        {
            return Ok(LegitimizationMeasures {
                measures: Vec::new(),
                is_and_combinator: rule.is_and_combinator,
                verboten: true,
            });
        }
        self.rules
            .resolve(&spec, &rules.custom_measures)
            .ok_or_else(|| {
                error(
                    ErrorCode::ExchangeKycMeasuresMalformed,
                    "a BALANCE rule names an unknown measure",
                )
            })
    }

    /// GET /kyc-check without the waiting: the account's state if `signature` is by its key.
    pub fn kyc_check(
        &self,
        h_payto: &NormalizedPaytoHash,
        signature: &EddsaSignature,
    ) -> Result<AccountCheck, TalerError> {
        let Some(account) = self.store.account(h_payto)? else {
            return Ok(AccountCheck::Unknown);
        };
        let Some(account_pub) = account.account_pub else {
            return Ok(AccountCheck::NoKey);
        };
        if verify_purpose(&account_pub, purpose::KYC_AUTH, &[], signature).is_err() {
            return Ok(AccountCheck::WrongKey {
                expected: account_pub,
            });
        }
        let (_, rules) = self.current_rules(h_payto)?;
        let aml_review = self
            .store
            .active_outcome(h_payto)?
            .is_some_and(|outcome| outcome.to_investigate);
        let kyc_required = self.store.open_measure(h_payto)?.is_some();
        Ok(AccountCheck::Authorized(AccountStatus {
            aml_review,
            access_token: account.access_token.to_base32(),
            limits: account_limits(&rules),
            kyc_required,
        }))
    }

    /// Records `account_pub` as the key of the account of the full payto `payto` (talerbox's
    /// substitute for the KYC auth wire transfer; `talerbox kyc account-key`).
    pub fn record_account_key(
        &self,
        payto: &str,
        account_pub: EddsaPublicKey,
    ) -> Result<NormalizedPaytoHash, TalerError> {
        let payto = Payto::parse_full(payto).map_err(|e| {
            error(ErrorCode::GenericParameterMalformed, "malformed payto URI")
                .with_detail(e.to_string())
        })?;
        self.store.record_account_key(RecordAccountKey {
            h_payto: payto.h_normalized(),
            normalized_payto: payto.normalized().to_owned(),
            full_payto: Some(payto.as_str().to_owned()),
            new_token: AccessToken(random_bytes(self.random.as_ref())),
            account_pub,
            now: self.clock.now(),
        })?;
        Ok(payto.h_normalized())
    }

    /// Whether the exchange runs KYC at all (`[exchange] ENABLE_KYC`).
    pub fn kyc_enabled(&self) -> bool {
        self.enabled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kudos(text: &str) -> Amount {
        text.parse().unwrap()
    }

    fn rule(
        operation_type: OperationType,
        threshold: &str,
        name: &str,
        measures: &[&str],
    ) -> KycRule {
        KycRule {
            operation_type,
            rule_name: Some(name.into()),
            threshold: kudos(threshold),
            timeframe: RelativeTime::from_seconds(60),
            measures: measures.iter().map(|m| (*m).to_owned()).collect(),
            display_priority: 1,
            exposed: name != "hidden",
            is_and_combinator: false,
        }
    }

    fn rule_set(rules: Vec<KycRule>) -> LegitimizationRuleSet {
        LegitimizationRuleSet {
            expiration_time: Timestamp::never(),
            successor_measure: None,
            rules,
            custom_measures: Default::default(),
        }
    }

    #[test]
    fn the_lowest_crossed_balance_rule_applies_and_the_next_threshold_is_the_lowest_above() {
        let rules = rule_set(vec![
            rule(OperationType::Balance, "KUDOS:100", "high", &["email"]),
            rule(OperationType::Balance, "KUDOS:10", "low", &["personal"]),
            rule(OperationType::Withdraw, "KUDOS:1", "withdraw", &["email"]),
            rule(OperationType::Balance, "KUDOS:1000", "top", &["verboten"]),
            rule(OperationType::Balance, "KUDOS:500", "middle", &["email"]),
        ]);
        let name = |r: Option<&KycRule>| r.and_then(|r| r.rule_name.clone());
        let (crossed, next) = balance_rules(&rules, &kudos("KUDOS:5"));
        assert_eq!((name(crossed), next), (None, Some(kudos("KUDOS:10"))));
        // A threshold is crossed when the balance reaches it.
        let (crossed, next) = balance_rules(&rules, &kudos("KUDOS:10"));
        assert_eq!(name(crossed).as_deref(), Some("low"));
        assert_eq!(next, Some(kudos("KUDOS:100")));
        let (crossed, next) = balance_rules(&rules, &kudos("KUDOS:600"));
        assert_eq!(name(crossed).as_deref(), Some("low"));
        assert_eq!(next, Some(kudos("KUDOS:1000")));
        let (crossed, next) = balance_rules(&rules, &kudos("KUDOS:5000"));
        assert_eq!(name(crossed).as_deref(), Some("low"));
        assert_eq!(next, None);
        // No BALANCE rule: nothing applies and there is no next threshold.
        let withdraw_only = rule_set(vec![rule(OperationType::Withdraw, "KUDOS:1", "w", &[])]);
        assert_eq!(
            balance_rules(&withdraw_only, &kudos("KUDOS:50")),
            (None, None)
        );
    }

    #[test]
    fn limits_list_exposed_rules_and_forbidden_ones_are_hard() {
        let rules = rule_set(vec![
            rule(OperationType::Deposit, "KUDOS:5", "soft", &["email"]),
            rule(OperationType::Balance, "KUDOS:7", "hard", &["VERBOTEN"]),
            rule(OperationType::Withdraw, "KUDOS:9", "hidden", &["email"]),
        ]);
        let limits = account_limits(&rules);
        assert_eq!(limits.len(), 2);
        assert!(limits[0].soft_limit && !limits[1].soft_limit);
        let json = serde_json::to_value(&limits[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "operation_type": "BALANCE",
                "rule_name": "hard",
                "timeframe": {"d_us": 60_000_000},
                "threshold": "KUDOS:7",
                "soft_limit": false,
            })
        );
    }

    #[test]
    fn long_polls_wait_only_for_what_their_target_names() {
        let status = |aml_review, kyc_required| {
            AccountCheck::Authorized(AccountStatus {
                aml_review,
                access_token: String::new(),
                limits: Vec::new(),
                kyc_required,
            })
        };
        let wrong = AccountCheck::WrongKey {
            expected: EddsaPublicKey([1; 32]),
        };
        use LongPollTarget as T;
        assert_eq!(LongPollTarget::from_number(4), T::None);
        for check in [&AccountCheck::Unknown, &wrong, &status(true, true)] {
            assert!(!T::None.keeps_waiting(check));
        }
        assert!(T::KycAuthTransfer.keeps_waiting(&AccountCheck::Unknown));
        assert!(T::KycAuthTransfer.keeps_waiting(&AccountCheck::NoKey));
        assert!(T::KycAuthTransfer.keeps_waiting(&wrong));
        assert!(!T::KycAuthTransfer.keeps_waiting(&status(true, true)));
        assert!(T::InvestigationDone.keeps_waiting(&AccountCheck::Unknown));
        assert!(!T::InvestigationDone.keeps_waiting(&wrong));
        assert!(T::InvestigationDone.keeps_waiting(&status(true, false)));
        assert!(!T::InvestigationDone.keeps_waiting(&status(false, true)));
        assert!(!T::KycOk.keeps_waiting(&AccountCheck::Unknown));
        assert!(!T::KycOk.keeps_waiting(&AccountCheck::NoKey));
        assert!(T::KycOk.keeps_waiting(&status(false, true)));
        assert!(!T::KycOk.keeps_waiting(&status(true, false)));
    }
}
