//! `ChallengeStore` on PostgreSQL (schema: `migrations/0003_challenger.sql`), one store per
//! challenger instance over the shared tables.
//!
//! Every mutation is one transaction. A validation changes by compare-and-swap on its
//! version in one `UPDATE`, which READ COMMITTED re-checks against the committed row after
//! waiting for a concurrent writer, so two writers of one version never both succeed.
//! A corrupt row is `StoreError::Internal`.

use std::sync::Arc;

use postgres::{GenericClient, Row};

use super::locks::{self, PURGE};
use super::{PgDatabase, PgError, Session};
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
pub struct PgChallengeStore {
    db: Arc<PgDatabase>,
    instance: String,
}

impl PgChallengeStore {
    pub fn new(db: Arc<PgDatabase>, instance: &str) -> PgChallengeStore {
        PgChallengeStore {
            db,
            instance: instance.to_owned(),
        }
    }
}

/// Counts the validation for its client and inserts it, in one statement: nothing is
/// inserted when the client does not exist (in this instance).
const CREATE_VALIDATION: &str = "WITH counted AS (
         UPDATE challenger_clients SET validation_counter = validation_counter + 1
         WHERE id = $3 AND instance = $1 RETURNING id)
     INSERT INTO challenger_validations (instance, nonce, client_id, version, created_at,
         expires_at, fix_address, address, changes_left, pin, pin_transmissions_left,
         auth_attempts_left, last_tx_time, retransmission_time, oauth_state, scope, redirect_uri,
         code_challenge, code_method, solved_at, code_hash, code_expires, code_used)
     SELECT $1, $2, counted.id, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
         $18, $19, $20, $21, $22, $23
     FROM counted";

/// Compare-and-swap: writes the row if its stored version is `$22`.
const UPDATE_VALIDATION: &str = "UPDATE challenger_validations SET version = $3,
         expires_at = $4, fix_address = $5, address = $6, changes_left = $7, pin = $8,
         pin_transmissions_left = $9, auth_attempts_left = $10, last_tx_time = $11,
         retransmission_time = $12, oauth_state = $13, scope = $14, redirect_uri = $15,
         code_challenge = $16, code_method = $17, solved_at = $18, code_hash = $19,
         code_expires = $20, code_used = $21
     WHERE nonce = $1 AND instance = $2 AND version = $22";

const INSERT_GRANT: &str = "INSERT INTO challenger_grants (instance, token_hash, nonce,
         code_hash, address, address_type, address_expires, token_expires)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";

impl ChallengeStore for PgChallengeStore {
    fn add_client(&self, redirect_uri: &str, secret_hash: [u8; 32]) -> Result<Client, StoreError> {
        let id = self.db.write(|s| {
            let row = s.query_one(
                "INSERT INTO challenger_clients (instance, redirect_uri, secret_hash)
                 VALUES ($1, $2, $3) RETURNING id",
                &[&self.instance, &redirect_uri, &&secret_hash[..]],
            )?;
            Ok(row.try_get::<_, i64>(0)?)
        })?;
        Ok(Client {
            id,
            redirect_uri: redirect_uri.to_owned(),
            secret_hash,
            validation_counter: 0,
        })
    }

    fn client(&self, id: i64) -> Result<Option<Client>, StoreError> {
        self.db.read(|s| {
            let sql = format!(
                "SELECT {CLIENT_COLUMNS} FROM challenger_clients WHERE id = $1 AND instance = $2"
            );
            let row = s.query_opt(&sql, &[&id, &self.instance])?;
            row.as_ref().map(read_client).transpose()
        })
    }

    fn clients(&self) -> Result<Vec<Client>, StoreError> {
        self.db.read(|s| {
            let sql = format!(
                "SELECT {CLIENT_COLUMNS} FROM challenger_clients WHERE instance = $1 ORDER BY id"
            );
            let rows = s.query(&sql, &[&self.instance])?;
            rows.iter().map(read_client).collect::<Result<_, _>>()
        })
    }

    fn set_redirect_uri(&self, id: i64, redirect_uri: &str) -> Result<bool, StoreError> {
        self.db.write(|s| {
            let updated = s.execute(
                "UPDATE challenger_clients SET redirect_uri = $1 WHERE id = $2 AND instance = $3",
                &[&redirect_uri, &id, &self.instance],
            )?;
            Ok(updated == 1)
        })
    }

    fn delete_client(&self, id: i64) -> Result<bool, StoreError> {
        self.db.write(|s| {
            let deleted = s.execute(
                "DELETE FROM challenger_clients WHERE id = $1 AND instance = $2",
                &[&id, &self.instance],
            )?;
            Ok(deleted == 1)
        })
    }

    fn create_validation(&self, validation: &Validation) -> Result<bool, StoreError> {
        let r = ValidationRow::from_validation(validation)?;
        self.db.write(|s| {
            let inserted = s.execute(
                CREATE_VALIDATION,
                &[
                    &self.instance,
                    &r.nonce,
                    &r.client_id,
                    &r.version,
                    &r.created_at,
                    &r.expires_at,
                    &r.fix_address,
                    &r.address,
                    &r.changes_left,
                    &r.pin,
                    &r.pin_transmissions_left,
                    &r.auth_attempts_left,
                    &r.last_tx_time,
                    &r.retransmission_time,
                    &r.oauth_state,
                    &r.scope,
                    &r.redirect_uri,
                    &r.code_challenge,
                    &r.code_method,
                    &r.solved_at,
                    &r.code_hash,
                    &r.code_expires,
                    &r.code_used,
                ],
            )?;
            Ok(inserted == 1)
        })
    }

    fn validation(&self, nonce: &[u8; 32]) -> Result<Option<Validation>, StoreError> {
        let sql = format!(
            "SELECT {VALIDATION_COLUMNS} FROM challenger_validations \
             WHERE nonce = $1 AND instance = $2"
        );
        self.read_validation(&sql, nonce)
    }

    fn validation_by_code(&self, code_hash: &[u8; 32]) -> Result<Option<Validation>, StoreError> {
        let sql = format!(
            "SELECT {VALIDATION_COLUMNS} FROM challenger_validations \
             WHERE code_hash = $1 AND instance = $2"
        );
        self.read_validation(&sql, code_hash)
    }

    fn update_validation(
        &self,
        expected_version: u64,
        validation: &Validation,
        grant: Option<&NewGrant>,
    ) -> Result<UpdateOutcome, StoreError> {
        let r = ValidationRow::from_validation(validation)?;
        let expected = to_i64(expected_version)?;
        let grant = grant.map(GrantRow::from_new).transpose()?;
        self.db.write(|s| {
            let changed = s.execute(
                UPDATE_VALIDATION,
                &[
                    &r.nonce,
                    &self.instance,
                    &r.version,
                    &r.expires_at,
                    &r.fix_address,
                    &r.address,
                    &r.changes_left,
                    &r.pin,
                    &r.pin_transmissions_left,
                    &r.auth_attempts_left,
                    &r.last_tx_time,
                    &r.retransmission_time,
                    &r.oauth_state,
                    &r.scope,
                    &r.redirect_uri,
                    &r.code_challenge,
                    &r.code_method,
                    &r.solved_at,
                    &r.code_hash,
                    &r.code_expires,
                    &r.code_used,
                    &expected,
                ],
            )?;
            if changed != 1 {
                return Ok(UpdateOutcome::Conflict);
            }
            let grant_id = match &grant {
                None => None,
                Some(grant) => Some(insert_grant(s, &self.instance, &r.nonce, grant)?),
            };
            Ok(UpdateOutcome::Updated { grant_id })
        })
    }

    fn revoke_grants(&self, code_hash: &[u8; 32]) -> Result<usize, StoreError> {
        self.db.write(|s| {
            let deleted = s.execute(
                "DELETE FROM challenger_grants WHERE code_hash = $1 AND instance = $2",
                &[&&code_hash[..], &self.instance],
            )?;
            Ok(count(deleted)?)
        })
    }

    fn grant(&self, token_hash: &[u8; 32]) -> Result<Option<Grant>, StoreError> {
        self.db.read(|s| {
            let row = s.query_opt(
                "SELECT id, nonce, code_hash, address, address_type, address_expires,
                     token_expires
                 FROM challenger_grants WHERE token_hash = $1 AND instance = $2",
                &[&&token_hash[..], &self.instance],
            )?;
            let Some(row) = row else {
                return Ok(None);
            };
            let stored = StoredGrantRow {
                id: row.try_get(0)?,
                nonce: row.try_get(1)?,
                code_hash: row.try_get(2)?,
                address: row.try_get(3)?,
                address_type: row.try_get(4)?,
                address_expires: row.try_get(5)?,
                token_expires: row.try_get(6)?,
            };
            Ok(Some(stored.into_grant(*token_hash)?))
        })
    }

    /// One instance purges at a time: when another holds the purge lock, nothing is done.
    fn purge_expired(&self, now: Timestamp) -> Result<Purged, StoreError> {
        let now = expiry_to_sql(now)?;
        self.db.write(|s| {
            if !locks::try_transaction_lock(s, PURGE)? {
                return Ok(Purged::default());
            }
            let grants = s.execute(
                "DELETE FROM challenger_grants WHERE instance = $1
                 AND token_expires IS NOT NULL AND token_expires <= $2",
                &[&self.instance, &now],
            )?;
            // Lock the expired validations first: a grant being inserted for one of them
            // (which holds a key-share lock on it) commits before, and the DELETE below then
            // sees it in its own, newer snapshot; no grant can be added afterwards.
            s.query_one(
                "SELECT count(*) FROM (SELECT 1 FROM challenger_validations WHERE instance = $1
                     AND expires_at IS NOT NULL AND expires_at <= $2 FOR UPDATE) AS expired",
                &[&self.instance, &now],
            )?;
            let validations = s.execute(
                "DELETE FROM challenger_validations WHERE instance = $1
                 AND expires_at IS NOT NULL AND expires_at <= $2
                 AND NOT EXISTS (SELECT 1 FROM challenger_grants g
                                 WHERE g.nonce = challenger_validations.nonce)",
                &[&self.instance, &now],
            )?;
            Ok(Purged {
                validations: count(validations)?,
                grants: count(grants)?,
            })
        })
    }
}

impl PgChallengeStore {
    /// The validation of this instance found by `sql` under `key` (`$1`; `$2` the instance).
    fn read_validation(&self, sql: &str, key: &[u8; 32]) -> Result<Option<Validation>, StoreError> {
        self.db.read(|s| {
            let row = s.query_opt(sql, &[&&key[..], &self.instance])?;
            Ok(row
                .as_ref()
                .map(read_validation_row)
                .transpose()?
                .map(ValidationRow::into_validation)
                .transpose()?)
        })
    }
}

fn insert_grant<C: GenericClient>(
    s: &mut Session<'_, C>,
    instance: &str,
    nonce: &[u8],
    grant: &GrantRow,
) -> Result<i64, PgError> {
    let row = s.query_one(
        INSERT_GRANT,
        &[
            &instance,
            &&grant.token_hash[..],
            &nonce,
            &&grant.code_hash[..],
            &grant.address,
            &grant.address_type,
            &grant.address_expires,
            &grant.token_expires,
        ],
    )?;
    Ok(row.try_get(0)?)
}

fn count(rows: u64) -> Result<usize, StoreError> {
    usize::try_from(rows).map_err(|_| StoreError::Internal(format!("{rows} rows")))
}

fn read_client(row: &Row) -> Result<Client, PgError> {
    let secret_hash: &[u8] = row.try_get(2)?;
    Ok(client_from_sql(
        row.try_get(0)?,
        row.try_get(1)?,
        secret_hash,
        row.try_get(3)?,
    )?)
}

fn read_validation_row(row: &Row) -> Result<ValidationRow, postgres::Error> {
    Ok(ValidationRow {
        nonce: row.try_get(0)?,
        client_id: row.try_get(1)?,
        version: row.try_get(2)?,
        created_at: row.try_get(3)?,
        expires_at: row.try_get(4)?,
        fix_address: row.try_get(5)?,
        address: row.try_get(6)?,
        changes_left: row.try_get(7)?,
        pin: row.try_get(8)?,
        pin_transmissions_left: row.try_get(9)?,
        auth_attempts_left: row.try_get(10)?,
        last_tx_time: row.try_get(11)?,
        retransmission_time: row.try_get(12)?,
        oauth_state: row.try_get(13)?,
        scope: row.try_get(14)?,
        redirect_uri: row.try_get(15)?,
        code_challenge: row.try_get(16)?,
        code_method: row.try_get(17)?,
        solved_at: row.try_get(18)?,
        code_hash: row.try_get(19)?,
        code_expires: row.try_get(20)?,
        code_used: row.try_get(21)?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Mutex, MutexGuard};

    use super::*;
    use crate::adapters::postgres::testing::{self, TestSchema};
    use crate::domain::challenges::OAuthBinding;
    use crate::ports::challenge_conformance::challenge_store_conformance;

    /// Advisory locks belong to the database, not the schema: the tests that purge (or hold
    /// the purge lock) run one at a time so that none sees another's lock.
    fn purge_tests() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    type Guard = (MutexGuard<'static, ()>, TestSchema);

    fn store() -> Option<(Guard, PgChallengeStore)> {
        let serial = purge_tests();
        let (schema, db) = testing::database()?;
        Some(((serial, schema), PgChallengeStore::new(db, "challenger")))
    }

    mod conformance {
        use super::*;
        challenge_store_conformance!(optional: store());
    }

    fn expiring(client_id: i64, nonce: u8, expires_at: Timestamp) -> Validation {
        Validation {
            nonce: [nonce; 32],
            client_id,
            version: 0,
            created_at: Timestamp::EPOCH,
            expires_at,
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
        }
    }

    #[test]
    fn instances_see_only_their_own_rows() {
        let Some((_guard, store)) = store() else {
            return;
        };
        let other = PgChallengeStore::new(Arc::clone(&store.db), "challenger-phone");
        let client = store.add_client("https://c.example/", [1; 32]).unwrap();
        assert_eq!(other.client(client.id).unwrap(), None);
        assert!(other.clients().unwrap().is_empty());
        assert!(!other.delete_client(client.id).unwrap());
        assert!(!other.set_redirect_uri(client.id, "https://x/").unwrap());
        let validation = expiring(client.id, 4, Timestamp::never());
        assert!(!other.create_validation(&validation).unwrap());
        assert!(store.create_validation(&validation).unwrap());
        assert_eq!(other.validation(&[4; 32]).unwrap(), None);
        assert_eq!(store.validation(&[4; 32]).unwrap(), Some(validation));
        assert_eq!(
            store.client(client.id).unwrap().unwrap().validation_counter,
            1
        );
    }

    #[test]
    fn a_purge_is_skipped_while_another_session_holds_the_purge_lock() {
        let Some(((_serial, schema), store)) = store() else {
            return;
        };
        let client = store.add_client("https://c.example/", [1; 32]).unwrap();
        let expired = expiring(client.id, 1, Timestamp::from_seconds(10).unwrap());
        assert!(store.create_validation(&expired).unwrap());
        let later = Timestamp::from_seconds(20).unwrap();

        let mut other = schema.connect();
        other
            .transaction(|s| -> Result<(), PgError> {
                assert!(locks::try_transaction_lock(s, PURGE)?);
                assert_eq!(store.purge_expired(later).unwrap(), Purged::default());
                Ok(())
            })
            .unwrap();
        assert!(store.validation(&[1; 32]).unwrap().is_some());

        // Released with the other transaction: the next purge does the work.
        assert_eq!(
            store.purge_expired(later).unwrap(),
            Purged {
                validations: 1,
                grants: 0
            }
        );
        assert_eq!(store.validation(&[1; 32]).unwrap(), None);
    }

    #[test]
    fn a_purge_keeps_a_validation_whose_grant_commits_while_it_waits() {
        let Some(((_serial, schema), store)) = store() else {
            return;
        };
        let client = store.add_client("https://c.example/", [1; 32]).unwrap();
        let expired = expiring(client.id, 1, Timestamp::from_seconds(10).unwrap());
        assert!(store.create_validation(&expired).unwrap());
        let later = Timestamp::from_seconds(20).unwrap();

        // Another session inserts a live grant for the expired validation and commits only
        // after the purge has started.
        let mut other = schema.connect();
        let purged = other
            .transaction(|s| -> Result<_, PgError> {
                s.execute(
                    "INSERT INTO challenger_grants (instance, token_hash, nonce, code_hash,
                         address, address_type) VALUES ('challenger', $1, $2, $1, '{}', 'email')",
                    &[&&[9u8; 32][..], &&[1u8; 32][..]],
                )?;
                let purge = std::thread::spawn({
                    let store = PgChallengeStore::new(Arc::clone(&store.db), "challenger");
                    move || store.purge_expired(later)
                });
                std::thread::sleep(std::time::Duration::from_millis(300));
                assert!(
                    !purge.is_finished(),
                    "the purge waits for the grant's transaction"
                );
                Ok(purge)
            })
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        assert_eq!(purged, Purged::default());
        assert!(store.validation(&[1; 32]).unwrap().is_some());
        assert!(store.grant(&[9; 32]).unwrap().is_some());
    }

    #[test]
    fn a_corrupt_row_is_an_internal_error() {
        let Some((_guard, store)) = store() else {
            return;
        };
        let client = store.add_client("https://c.example/", [1; 32]).unwrap();
        let validation = expiring(client.id, 1, Timestamp::never());
        assert!(store.create_validation(&validation).unwrap());
        store
            .db
            .write(|s| Ok(s.execute("UPDATE challenger_validations SET address = 'nope'", &[])?))
            .unwrap();
        assert!(matches!(
            store.validation(&[1; 32]),
            Err(StoreError::Internal(_))
        ));
    }
}
