//! `ChallengeStore` on SQLite (schema: `migrations/0003_challenger.sql`), one store per
//! challenger instance over the shared tables.
//!
//! Reads use the pool; every mutation is one job of the single writer, so the check of a
//! compare-and-swap and its write are one transaction. A corrupt row is `StoreError::Internal`.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Database;
use crate::adapters::challenger_rows::{
    CLIENT_COLUMNS, GrantRow, StoredGrantRow, VALIDATION_COLUMNS, ValidationRow, client_from_sql,
    to_i64,
};
use crate::adapters::convert::expiry_to_sql;
use crate::domain::challenges::{Client, Grant, NewGrant, Validation};
use crate::domain::primitives::Timestamp;
use crate::ports::StoreError;
use crate::ports::challenges::{ChallengeStore, Purged, UpdateOutcome};

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
            insert_validation(conn, &instance, &row)?;
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
            if !update_validation(conn, &instance, &row, expected)? {
                return Ok(UpdateOutcome::Conflict);
            }
            let grant_id = match grant {
                None => None,
                Some(grant) => Some(insert_grant(conn, &instance, &row.nonce, &grant)?),
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
                    Ok(StoredGrantRow {
                        id: row.get(0)?,
                        nonce: row.get(1)?,
                        code_hash: row.get(2)?,
                        address: row.get(3)?,
                        address_type: row.get(4)?,
                        address_expires: row.get(5)?,
                        token_expires: row.get(6)?,
                    })
                })
                .optional()?;
            row.map(|row| row.into_grant(*token_hash)).transpose()
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
    Ok(client_from_sql(
        row.get(0)?,
        row.get(1)?,
        &secret_hash,
        row.get(3)?,
    ))
}

fn read_validation(
    conn: &Connection,
    sql: &str,
    key: &[u8],
    instance: &str,
) -> Result<Option<Validation>, StoreError> {
    conn.prepare_cached(sql)?
        .query_row(params![key, instance], read_validation_row)
        .optional()?
        .map(ValidationRow::into_validation)
        .transpose()
}

fn read_validation_row(row: &Row<'_>) -> rusqlite::Result<ValidationRow> {
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

fn insert_validation(
    conn: &Connection,
    instance: &str,
    row: &ValidationRow,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO challenger_validations (instance, {VALIDATION_COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
         ?19, ?20, ?21, ?22, ?23)"
    );
    conn.prepare_cached(&sql)?.execute(params![
        instance,
        row.nonce,
        row.client_id,
        row.version,
        row.created_at,
        row.expires_at,
        row.fix_address,
        row.address,
        row.changes_left,
        row.pin,
        row.pin_transmissions_left,
        row.auth_attempts_left,
        row.last_tx_time,
        row.retransmission_time,
        row.oauth_state,
        row.scope,
        row.redirect_uri,
        row.code_challenge,
        row.code_method,
        row.solved_at,
        row.code_hash,
        row.code_expires,
        row.code_used,
    ])?;
    Ok(())
}

/// Compare-and-swap: writes the row if its stored version is `expected`.
fn update_validation(
    conn: &Connection,
    instance: &str,
    row: &ValidationRow,
    expected: i64,
) -> Result<bool, StoreError> {
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
            row.nonce,
            instance,
            row.version,
            row.expires_at,
            row.fix_address,
            row.address,
            row.changes_left,
            row.pin,
            row.pin_transmissions_left,
            row.auth_attempts_left,
            row.last_tx_time,
            row.retransmission_time,
            row.oauth_state,
            row.scope,
            row.redirect_uri,
            row.code_challenge,
            row.code_method,
            row.solved_at,
            row.code_hash,
            row.code_expires,
            row.code_used,
            expected,
        ])?;
    Ok(changed == 1)
}

fn insert_grant(
    conn: &Connection,
    instance: &str,
    nonce: &[u8],
    grant: &GrantRow,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO challenger_grants (instance, token_hash, nonce, code_hash, address, \
         address_type, address_expires, token_expires) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        instance,
        &grant.token_hash[..],
        nonce,
        &grant.code_hash[..],
        grant.address,
        grant.address_type,
        grant.address_expires,
        grant.token_expires,
    ])?;
    Ok(conn.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::DbOptions;
    use crate::domain::challenges::OAuthBinding;
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
