//! The column form of challenger validations and grants, shared by the SQLite and PostgreSQL
//! stores so that both write and read exactly the same values (schema: migration 0003).

use crate::adapters::convert::{bytes, corrupt, expiry_from_sql, expiry_to_sql, micros_from_sql};
use crate::domain::challenges::{
    Address, Client, CodeChallenge, Grant, IssuedCode, NewGrant, OAuthBinding, PkceMethod,
    Validation,
};
use crate::ports::StoreError;
use crate::ports::challenges::stored_grant;

/// The columns of `challenger_clients` that make a `Client`.
pub const CLIENT_COLUMNS: &str = "id, redirect_uri, secret_hash, validation_counter";

/// The columns of `challenger_validations` after `instance`, in table order.
pub const VALIDATION_COLUMNS: &str = "nonce, client_id, version, created_at, expires_at, \
     fix_address, address, changes_left, pin, pin_transmissions_left, auth_attempts_left, \
     last_tx_time, retransmission_time, oauth_state, scope, redirect_uri, code_challenge, \
     code_method, solved_at, code_hash, code_expires, code_used";

/// A validation in its column form (the fields in `VALIDATION_COLUMNS` order).
pub struct ValidationRow {
    pub nonce: Vec<u8>,
    pub client_id: i64,
    pub version: i64,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub fix_address: bool,
    pub address: Option<String>,
    pub changes_left: i64,
    pub pin: Option<String>,
    pub pin_transmissions_left: i64,
    pub auth_attempts_left: i64,
    pub last_tx_time: Option<i64>,
    pub retransmission_time: Option<i64>,
    pub oauth_state: Option<String>,
    pub scope: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub code_method: Option<String>,
    pub solved_at: Option<i64>,
    pub code_hash: Option<Vec<u8>>,
    pub code_expires: Option<i64>,
    pub code_used: bool,
}

impl ValidationRow {
    pub fn from_validation(v: &Validation) -> Result<ValidationRow, StoreError> {
        let challenge = v.oauth.code_challenge.as_ref();
        Ok(ValidationRow {
            nonce: v.nonce.to_vec(),
            client_id: v.client_id,
            version: to_i64(v.version)?,
            created_at: to_i64(v.created_at.as_micros())?,
            expires_at: expiry_to_sql(v.expires_at)?,
            fix_address: v.fix_address,
            address: v.address.as_ref().map(address_to_sql).transpose()?,
            changes_left: i64::from(v.changes_left),
            pin: v.pin.clone(),
            pin_transmissions_left: i64::from(v.pin_transmissions_left),
            auth_attempts_left: i64::from(v.auth_attempts_left),
            last_tx_time: v.last_tx_time.map(expiry_to_sql).transpose()?.flatten(),
            retransmission_time: expiry_to_sql(v.retransmission_time)?,
            oauth_state: v.oauth.state.clone(),
            scope: v.oauth.scope.clone(),
            redirect_uri: v.oauth.redirect_uri.clone(),
            code_challenge: challenge.map(|c| c.challenge.clone()),
            code_method: challenge.map(|c| c.method.as_str().to_owned()),
            solved_at: v.solved_at.map(expiry_to_sql).transpose()?.flatten(),
            code_hash: v.code.as_ref().map(|c| c.hash.to_vec()),
            code_expires: v
                .code
                .as_ref()
                .map(|c| expiry_to_sql(c.expires_at))
                .transpose()?
                .flatten(),
            code_used: v.code.as_ref().is_some_and(|c| c.used),
        })
    }

    pub fn into_validation(self) -> Result<Validation, StoreError> {
        let code_challenge = match (self.code_challenge, self.code_method) {
            (Some(challenge), Some(method)) => Some(CodeChallenge {
                method: PkceMethod::parse(&method)
                    .ok_or_else(|| corrupt("PKCE method", &method))?,
                challenge,
            }),
            (None, None) => None,
            _ => return Err(corrupt("PKCE challenge", "half set")),
        };
        let code = match self.code_hash {
            None => None,
            Some(hash) => Some(IssuedCode {
                hash: bytes::<32>(&hash, "code hash")?,
                expires_at: expiry_from_sql(self.code_expires)?,
                used: self.code_used,
            }),
        };
        Ok(Validation {
            nonce: bytes::<32>(&self.nonce, "nonce")?,
            client_id: self.client_id,
            version: from_i64(self.version, "version")?,
            created_at: micros_from_sql(self.created_at)?,
            expires_at: expiry_from_sql(self.expires_at)?,
            fix_address: self.fix_address,
            address: self.address.as_deref().map(address_from_sql).transpose()?,
            changes_left: counter(self.changes_left)?,
            pin: self.pin,
            pin_transmissions_left: counter(self.pin_transmissions_left)?,
            auth_attempts_left: counter(self.auth_attempts_left)?,
            last_tx_time: self.last_tx_time.map(micros_from_sql).transpose()?,
            retransmission_time: expiry_from_sql(self.retransmission_time)?,
            oauth: OAuthBinding {
                state: self.oauth_state,
                scope: self.scope,
                redirect_uri: self.redirect_uri,
                code_challenge,
            },
            solved_at: self.solved_at.map(micros_from_sql).transpose()?,
            code,
        })
    }
}

/// A new grant in its column form.
pub struct GrantRow {
    pub token_hash: [u8; 32],
    pub code_hash: [u8; 32],
    pub address: String,
    pub address_type: String,
    pub address_expires: Option<i64>,
    pub token_expires: Option<i64>,
}

impl GrantRow {
    pub fn from_new(new: &NewGrant) -> Result<GrantRow, StoreError> {
        Ok(GrantRow {
            token_hash: new.token_hash,
            code_hash: new.code_hash,
            address: address_to_sql(&new.address)?,
            address_type: new.address_type.clone(),
            address_expires: expiry_to_sql(new.address_expires)?,
            token_expires: expiry_to_sql(new.token_expires)?,
        })
    }
}

/// The columns of a stored grant (`id, nonce, code_hash, address, address_type,
/// address_expires, token_expires`), read back under its token hash.
pub struct StoredGrantRow {
    pub id: i64,
    pub nonce: Vec<u8>,
    pub code_hash: Vec<u8>,
    pub address: String,
    pub address_type: String,
    pub address_expires: Option<i64>,
    pub token_expires: Option<i64>,
}

impl StoredGrantRow {
    pub fn into_grant(self, token_hash: [u8; 32]) -> Result<Grant, StoreError> {
        let new = NewGrant {
            token_hash,
            code_hash: bytes::<32>(&self.code_hash, "code hash")?,
            address: address_from_sql(&self.address)?,
            address_type: self.address_type,
            address_expires: expiry_from_sql(self.address_expires)?,
            token_expires: expiry_from_sql(self.token_expires)?,
        };
        Ok(stored_grant(
            self.id,
            bytes::<32>(&self.nonce, "nonce")?,
            &new,
        ))
    }
}

pub fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Internal(format!("{value} out of range")))
}

/// A client from its columns (`id, redirect_uri, secret_hash, validation_counter`).
pub fn client_from_sql(
    id: i64,
    redirect_uri: String,
    secret_hash: &[u8],
    validation_counter: i64,
) -> Result<Client, StoreError> {
    Ok(Client {
        id,
        redirect_uri,
        secret_hash: bytes::<32>(secret_hash, "client secret hash")?,
        validation_counter: from_i64(validation_counter, "validation counter")?,
    })
}

fn from_i64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(what, &value.to_string()))
}

fn counter(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt("counter", &value.to_string()))
}

fn address_to_sql(address: &Address) -> Result<String, StoreError> {
    serde_json::to_string(address).map_err(|e| StoreError::Internal(e.to_string()))
}

fn address_from_sql(text: &str) -> Result<Address, StoreError> {
    serde_json::from_str(text).map_err(|_| corrupt("address", text))
}
