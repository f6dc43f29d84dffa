//! Wire shapes of the Corebank account API (requests as sent, responses as answered).
//! Amounts and paytos arrive as strings so that their errors get the bank's own codes.

use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::primitives::{Amount, RelativeTime, Timestamp};

use super::auth::Scope;
use super::model::{Balance, TanChannel};

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn absent_or_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContactDataRequest {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RegisterAccountRequest {
    pub username: String,
    pub password: String,
    pub name: String,
    #[serde(default)]
    pub is_public: bool,
    #[serde(default)]
    pub is_taler_exchange: bool,
    #[serde(default)]
    pub contact_data: Option<ContactDataRequest>,
    #[serde(default)]
    pub cashout_payto_uri: Option<String>,
    #[serde(default)]
    pub payto_uri: Option<String>,
    #[serde(default)]
    pub debit_threshold: Option<String>,
    #[serde(default)]
    pub min_cashout: Option<String>,
    #[serde(default)]
    pub conversion_rate_class_id: Option<i64>,
    #[serde(default)]
    pub tan_channel: Option<TanChannel>,
    #[serde(default)]
    pub tan_channels: Option<Vec<TanChannel>>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RegisterAccountResponse {
    pub internal_payto_uri: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContactDataPatch {
    #[serde(default, deserialize_with = "absent_or_null")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "absent_or_null")]
    pub phone: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AccountReconfiguration {
    #[serde(default)]
    pub contact_data: Option<ContactDataPatch>,
    #[serde(default, deserialize_with = "absent_or_null")]
    pub cashout_payto_uri: Option<Option<String>>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub is_public: Option<bool>,
    #[serde(default)]
    pub debit_threshold: Option<String>,
    #[serde(default, deserialize_with = "absent_or_null")]
    pub min_cashout: Option<Option<String>>,
    #[serde(default, deserialize_with = "absent_or_null")]
    pub conversion_rate_class_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "absent_or_null")]
    pub tan_channel: Option<Option<TanChannel>>,
    #[serde(default, deserialize_with = "absent_or_null")]
    pub tan_channels: Option<Option<Vec<TanChannel>>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccountPasswordChange {
    #[serde(default)]
    pub old_password: Option<String>,
    pub new_password: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenRequest {
    pub scope: Scope,
    #[serde(default)]
    pub duration: Option<RelativeTime>,
    #[serde(default)]
    pub refreshable: bool,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TokenSuccessResponse {
    pub access_token: String,
    pub expiration: Timestamp,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BalanceJson {
    pub amount: Amount,
    pub credit_debit_indicator: &'static str,
}

impl From<&Balance> for BalanceJson {
    fn from(balance: &Balance) -> Self {
        let indicator = if balance.has_debt { "debit" } else { "credit" };
        BalanceJson {
            amount: balance.amount.clone(),
            credit_debit_indicator: indicator,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ContactDataJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccountData {
    pub name: String,
    pub balance: BalanceJson,
    pub payto_uri: String,
    pub debit_threshold: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_data: Option<ContactDataJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cashout_payto_uri: Option<String>,
    pub is_public: bool,
    pub is_taler_exchange: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tan_channel: Option<TanChannel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tan_channels: Option<Vec<TanChannel>>,
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccountMinimalData {
    pub username: String,
    pub name: String,
    pub payto_uri: String,
    pub balance: BalanceJson,
    pub debit_threshold: Amount,
    pub is_public: bool,
    pub is_taler_exchange: bool,
    pub row_id: i64,
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ListBankAccountsResponse {
    pub accounts: Vec<AccountMinimalData>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicAccount {
    pub username: String,
    pub payto_uri: String,
    pub balance: BalanceJson,
    pub is_taler_exchange: bool,
    pub row_id: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicAccountsResponse {
    pub public_accounts: Vec<PublicAccount>,
}
