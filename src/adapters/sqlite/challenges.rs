//! `ChallengeStore` on SQLite (schema: `migrations/0003_challenger.sql`), one store per
//! challenger instance over the shared tables.
//!
//! Reads use the pool; every mutation is one job of the single writer, so the check of a
//! compare-and-swap and its write are one transaction. A corrupt row is `StoreError::Internal`.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Database;
use crate::adapters::convert::{bytes, corrupt, expiry_from_sql, expiry_to_sql, micros_from_sql};
use crate::domain::challenges::{
    Address, Client, CodeChallenge, Grant, IssuedCode, NewGrant, OAuthBinding, PkceMethod,
    Validation,
};
use crate::domain::primitives::Timestamp;
use crate::ports::StoreError;
use crate::ports::challenges::{ChallengeStore, Purged, UpdateOutcome, stored_grant};

/// The clients, validations and grants of one instance (`challenger` or `challenger-NAME`).
pub struct SqliteChallengeStore {
    db: Arc<Database>,
    instance: Arc<str>,
}

impl SqliteChallengeStore {
    pub fn new(db: Arc<Database>, instance: &str) -> SqliteChallengeStore {
        SqliteChallengeStore {
            db,
            instance: Arc::from(instance),
        }
    }
}

const VALIDATION_COLUMNS: &str = "nonce, client_id, version, created_at, expires_at, \
     fix_address, address, changes_left, pin, pin_transmissions_left, auth_attempts_left, \
     last_tx_time, retransmission_time, oauth_state, scope, redirect_uri, code_challenge, \
     code_method, solved_at, code_hash, code_expires, code_used";

const CLIENT_COLUMNS: &str = "id, redirect_uri, secret_hash, validation_counter";

impl ChallengeStore for SqliteChallengeStore {
    fn add_client(&self, redirect_uri: &str, secret_hash: [u8; 32]) -> Result<Client, StoreError> {
        let instance = Arc::clone(&self.instance);
        let redirect_uri = redirect_uri.to_owned();
        self.db.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO challenger_clients (instance, redirect_uri, secret_hash) \
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![&*instance, redirect_uri, &secret_hash[..]])?;
            Ok(Client {
                id: conn.last_insert_rowid(),
                redirect_uri,
                secret_hash,
                validation_counter: 0,
            })
        })
    }

    fn client(&self, id: i64) -> Result<Option<Client>, StoreError> {
        self.db.read(|conn| {
            let sql = format!(
                "SELECT {CLIENT_COLUMNS} FROM challenger_clients WHERE id = ?1 AND instance = ?2"
            );
            conn.prepare_cached(&sql)?
                .query_row(params![id, &*self.instance], read_client)
                .optional()?
                .transpose()
        })
    }

    fn clients(&self) -> Result<Vec<Client>, StoreError> {
        self.db.read(|conn| {
            let sql = format!(
                "SELECT {CLIENT_COLUMNS} FROM challenger_clients WHERE instance = ?1 ORDER BY id"
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map([&*self.instance], read_client)?;
            rows.map(|row| row?).collect()
        })
    }

    fn set_redirect_uri(&self, id: i64, redirect_uri: &str) -> Result<bool, StoreError> {
        let instance = Arc::clone(&self.instance);
        let redirect_uri = redirect_uri.to_owned();
        self.db.write(move |conn| {
            let updated = conn
                .prepare_cached(
                    "UPDATE challenger_clients SET redirect_uri = ?1 WHERE id = ?2 AND instance = ?3",
                )?
                .execute(params![redirect_uri, id, &*instance])?;
            Ok(updated == 1)
        })
    }

    fn delete_client(&self, id: i64) -> Result<bool, StoreError> {
        let instance = Arc::clone(&self.instance);
        self.db.write(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM challenger_clients WHERE id = ?1 AND instance = ?2")?
                .execute(params![id, &*instance])?;
            Ok(deleted == 1)
        })
    }

    fn create_validation(&self, validation: &Validation) -> Result<bool, StoreError> {
        let instance = Arc::clone(&self.instance);
        let row = ValidationRow::from_validation(validation)?;
        self.db.write(move |conn| {
            let counted = conn
                .prepare_cached(
                    "UPDATE challenger_clients SET validation_counter = validation_counter + 1 \
                     WHERE id = ?1 AND instance = ?2",
                )?
                .execute(params![row.client_id, &*instance])?;
            if counted == 0 {
                return Ok(false);
            }
            row.insert(conn, &instance)?;
            Ok(true)
        })
    }

    fn validation(&self, nonce: &[u8; 32]) -> Result<Option<Validation>, StoreError> {
        self.db.read(|conn| {
            let sql = format!(
                "SELECT {VALIDATION_COLUMNS} FROM challenger_validations \
                 WHERE nonce = ?1 AND instance = ?2"
            );
            read_validation(conn, &sql, &nonce[..], &self.instance)
        })
    }

    fn validation_by_code(&self, code_hash: &[u8; 32]) -> Result<Option<Validation>, StoreError> {
        self.db.read(|conn| {
            let sql = format!(
                "SELECT {VALIDATION_COLUMNS} FROM challenger_validations \
                 WHERE code_hash = ?1 AND instance = ?2"
            );
            read_validation(conn, &sql, &code_hash[..], &self.instance)
        })
    }

    fn update_validation(
        &self,
        expected_version: u64,
        validation: &Validation,
        grant: Option<&NewGrant>,
    ) -> Result<UpdateOutcome, StoreError> {
        let instance = Arc::clone(&self.instance);
        let row = ValidationRow::from_validation(validation)?;
        let expected = to_i64(expected_version)?;
        let grant = grant.map(GrantRow::from_new).transpose()?;
        self.db.write(move |conn| {
            if !row.update(conn, &instance, expected)? {
                return Ok(UpdateOutcome::Conflict);
            }
            let grant_id = match grant {
                None => None,
                Some(grant) => Some(grant.insert(conn, &instance, &row.nonce)?),
            };
            Ok(UpdateOutcome::Updated { grant_id })
        })
    }

    fn revoke_grants(&self, code_hash: &[u8; 32]) -> Result<usize, StoreError> {
        let instance = Arc::clone(&self.instance);
        let code_hash = *code_hash;
        self.db.write(move |conn| {
            let deleted = conn
                .prepare_cached(
                    "DELETE FROM challenger_grants WHERE code_hash = ?1 AND instance = ?2",
                )?
                .execute(params![&code_hash[..], &*instance])?;
            Ok(deleted)
        })
    }

    fn grant(&self, token_hash: &[u8; 32]) -> Result<Option<Grant>, StoreError> {
        self.db.read(|conn| {
            let row = conn
                .prepare_cached(
                    "SELECT id, nonce, code_hash, address, address_type, address_expires, \
                     token_expires FROM challenger_grants WHERE token_hash = ?1 AND instance = ?2",
                )?
                .query_row(params![&token_hash[..], &*self.instance], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                        row.get::<_, Option<i64>>(6)?,
                    ))
                })
                .optional()?;
            let Some((id, nonce, code_hash, address, address_type, address_expires, expires)) = row
            else {
                return Ok(None);
            };
            let new = NewGrant {
                token_hash: *token_hash,
                code_hash: bytes::<32>(&code_hash, "code hash")?,
                address: address_from_sql(&address)?,
                address_type,
                address_expires: expiry_from_sql(address_expires)?,
                token_expires: expiry_from_sql(expires)?,
            };
            Ok(Some(stored_grant(id, bytes::<32>(&nonce, "nonce")?, &new)))
        })
    }

    fn purge_expired(&self, now: Timestamp) -> Result<Purged, StoreError> {
        let instance = Arc::clone(&self.instance);
        let now = expiry_to_sql(now)?;
        self.db.write(move |conn| {
            let grants = conn
                .prepare_cached(
                    "DELETE FROM challenger_grants WHERE instance = ?1 \
                     AND token_expires IS NOT NULL AND token_expires <= ?2",
                )?
                .execute(params![&*instance, now])?;
            let validations = conn
                .prepare_cached(
                    "DELETE FROM challenger_validations WHERE instance = ?1 \
                     AND expires_at IS NOT NULL AND expires_at <= ?2 \
                     AND NOT EXISTS (SELECT 1 FROM challenger_grants g \
                                     WHERE g.nonce = challenger_validations.nonce)",
                )?
                .execute(params![&*instance, now])?;
            Ok(Purged {
                validations,
                grants,
            })
        })
    }
}

fn read_client(row: &Row<'_>) -> rusqlite::Result<Result<Client, StoreError>> {
    let secret_hash: Vec<u8> = row.get(2)?;
    let counter: i64 = row.get(3)?;
    Ok((|| {
        Ok(Client {
            id: row.get(0)?,
            redirect_uri: row.get(1)?,
            secret_hash: bytes::<32>(&secret_hash, "client secret hash")?,
            validation_counter: u64::try_from(counter)
                .map_err(|_| corrupt("validation counter", &counter.to_string()))?,
        })
    })())
}

fn read_validation(
    conn: &Connection,
    sql: &str,
    key: &[u8],
    instance: &str,
) -> Result<Option<Validation>, StoreError> {
    conn.prepare_cached(sql)?
        .query_row(params![key, instance], ValidationRow::read)
        .optional()?
        .map(ValidationRow::into_validation)
        .transpose()
}

/// A validation in its column form.
struct ValidationRow {
    nonce: Vec<u8>,
    client_id: i64,
    version: i64,
    created_at: i64,
    expires_at: Option<i64>,
    fix_address: bool,
    address: Option<String>,
    changes_left: i64,
    pin: Option<String>,
    pin_transmissions_left: i64,
    auth_attempts_left: i64,
    last_tx_time: Option<i64>,
    retransmission_time: Option<i64>,
    oauth_state: Option<String>,
    scope: Option<String>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    code_method: Option<String>,
    solved_at: Option<i64>,
    code_hash: Option<Vec<u8>>,
    code_expires: Option<i64>,
    code_used: bool,
}

impl ValidationRow {
    fn from_validation(v: &Validation) -> Result<ValidationRow, StoreError> {
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

    fn read(row: &Row<'_>) -> rusqlite::Result<ValidationRow> {
        Ok(ValidationRow {
            nonce: row.get(0)?,
            client_id: row.get(1)?,
            version: row.get(2)?,
            created_at: row.get(3)?,
            expires_at: row.get(4)?,
            fix_address: row.get(5)?,
            address: row.get(6)?,
            changes_left: row.get(7)?,
            pin: row.get(8)?,
            pin_transmissions_left: row.get(9)?,
            auth_attempts_left: row.get(10)?,
            last_tx_time: row.get(11)?,
            retransmission_time: row.get(12)?,
            oauth_state: row.get(13)?,
            scope: row.get(14)?,
            redirect_uri: row.get(15)?,
            code_challenge: row.get(16)?,
            code_method: row.get(17)?,
            solved_at: row.get(18)?,
            code_hash: row.get(19)?,
            code_expires: row.get(20)?,
            code_used: row.get(21)?,
        })
    }

    fn into_validation(self) -> Result<Validation, StoreError> {
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

    fn insert(&self, conn: &Connection, instance: &str) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO challenger_validations (instance, {VALIDATION_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
             ?19, ?20, ?21, ?22, ?23)"
        );
        conn.prepare_cached(&sql)?.execute(params![
            instance,
            self.nonce,
            self.client_id,
            self.version,
            self.created_at,
            self.expires_at,
            self.fix_address,
            self.address,
            self.changes_left,
            self.pin,
            self.pin_transmissions_left,
            self.auth_attempts_left,
            self.last_tx_time,
            self.retransmission_time,
            self.oauth_state,
            self.scope,
            self.redirect_uri,
            self.code_challenge,
            self.code_method,
            self.solved_at,
            self.code_hash,
            self.code_expires,
            self.code_used,
        ])?;
        Ok(())
    }

    /// Compare-and-swap: writes the row if its stored version is `expected`.
    fn update(&self, conn: &Connection, instance: &str, expected: i64) -> Result<bool, StoreError> {
        let changed = conn
            .prepare_cached(
                "UPDATE challenger_validations SET version = ?3, expires_at = ?4, \
                 fix_address = ?5, address = ?6, changes_left = ?7, pin = ?8, \
                 pin_transmissions_left = ?9, auth_attempts_left = ?10, last_tx_time = ?11, \
                 retransmission_time = ?12, oauth_state = ?13, scope = ?14, redirect_uri = ?15, \
                 code_challenge = ?16, code_method = ?17, solved_at = ?18, code_hash = ?19, \
                 code_expires = ?20, code_used = ?21 \
                 WHERE nonce = ?1 AND instance = ?2 AND version = ?22",
            )?
            .execute(params![
                self.nonce,
                instance,
                self.version,
                self.expires_at,
                self.fix_address,
                self.address,
                self.changes_left,
                self.pin,
                self.pin_transmissions_left,
                self.auth_attempts_left,
                self.last_tx_time,
                self.retransmission_time,
                self.oauth_state,
                self.scope,
                self.redirect_uri,
                self.code_challenge,
                self.code_method,
                self.solved_at,
                self.code_hash,
                self.code_expires,
                self.code_used,
                expected,
            ])?;
        Ok(changed == 1)
    }
}

/// A new grant in its column form.
struct GrantRow {
    token_hash: [u8; 32],
    code_hash: [u8; 32],
    address: String,
    address_type: String,
    address_expires: Option<i64>,
    token_expires: Option<i64>,
}

impl GrantRow {
    fn from_new(new: &NewGrant) -> Result<GrantRow, StoreError> {
        Ok(GrantRow {
            token_hash: new.token_hash,
            code_hash: new.code_hash,
            address: address_to_sql(&new.address)?,
            address_type: new.address_type.clone(),
            address_expires: expiry_to_sql(new.address_expires)?,
            token_expires: expiry_to_sql(new.token_expires)?,
        })
    }

    fn insert(&self, conn: &Connection, instance: &str, nonce: &[u8]) -> Result<i64, StoreError> {
        conn.prepare_cached(
            "INSERT INTO challenger_grants (instance, token_hash, nonce, code_hash, address, \
             address_type, address_expires, token_expires) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            instance,
            &self.token_hash[..],
            nonce,
            &self.code_hash[..],
            self.address,
            self.address_type,
            self.address_expires,
            self.token_expires,
        ])?;
        Ok(conn.last_insert_rowid())
    }
}

// ---- column conversions ----

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Internal(format!("{value} out of range")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::DbOptions;
    use crate::ports::challenge_conformance::challenge_store_conformance;

    fn temp_store() -> (tempfile::TempDir, SqliteChallengeStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.sqlite3"), &DbOptions::default()).unwrap();
        (dir, SqliteChallengeStore::new(Arc::new(db), "challenger"))
    }

    mod conformance {
        use super::*;
        challenge_store_conformance!(guarded: temp_store());
    }

    #[test]
    fn instances_see_only_their_own_rows() {
        let (_dir, store) = temp_store();
        let other = SqliteChallengeStore::new(Arc::clone(&store.db), "challenger-phone");
        let client = store.add_client("https://c.example/", [1; 32]).unwrap();
        assert_eq!(other.client(client.id).unwrap(), None);
        assert!(other.clients().unwrap().is_empty());
        assert!(!other.delete_client(client.id).unwrap());
        let validation = Validation {
            nonce: [4; 32],
            client_id: client.id,
            version: 0,
            created_at: Timestamp::EPOCH,
            expires_at: Timestamp::never(),
            fix_address: false,
            address: None,
            changes_left: 1,
            pin: None,
            pin_transmissions_left: 1,
            auth_attempts_left: 1,
            last_tx_time: None,
            retransmission_time: Timestamp::EPOCH,
            oauth: OAuthBinding::default(),
            solved_at: None,
            code: None,
        };
        assert!(!other.create_validation(&validation).unwrap());
        assert!(store.create_validation(&validation).unwrap());
        assert_eq!(other.validation(&[4; 32]).unwrap(), None);
        assert_eq!(store.validation(&[4; 32]).unwrap(), Some(validation));
    }
}
