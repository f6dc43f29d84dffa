//! `TanStore` on SQLite (schema: `migrations/0007_bank_tan.sql`). Reads use the pool; every
//! mutation is one job of the single writer, so a compare-and-swap's check and write are one
//! transaction. A corrupt row is `StoreError::Internal`.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Database;
use crate::adapters::convert::{bytes, corrupt, micros_from_sql, micros_to_sql};
use crate::domain::accounts::TanChannel;
use crate::domain::primitives::Timestamp;
use crate::domain::tan::{Challenge, ChallengeId, Operation, Role};
use crate::ports::StoreError;
use crate::ports::tan::TanStore;

pub struct SqliteTanStore {
    db: Arc<Database>,
}

impl SqliteTanStore {
    pub fn new(db: Arc<Database>) -> SqliteTanStore {
        SqliteTanStore { db }
    }
}

const COLUMNS: &str = "id, account_id, op, role, channel, address, body_salt, body_hash, code, \
     code_expires_at, attempts_left, next_send_at, created_at, solved_at, used_at, \
     invalidated_at";

fn time_to_sql(time: Option<Timestamp>) -> Result<Option<i64>, StoreError> {
    time.map(micros_to_sql).transpose()
}

fn time_from_sql(micros: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    micros.map(micros_from_sql).transpose()
}

/// The mutable columns of a challenge, in the order of `MUTABLE`.
fn mutable_values(c: &Challenge) -> Result<[rusqlite::types::Value; 8], StoreError> {
    use rusqlite::types::Value;
    let time = |t: Option<Timestamp>| -> Result<Value, StoreError> {
        Ok(time_to_sql(t)?.map_or(Value::Null, Value::Integer))
    };
    Ok([
        c.body_hash.map_or(Value::Null, |h| Value::Blob(h.to_vec())),
        c.code.clone().map_or(Value::Null, Value::Text),
        time(c.code_expires_at)?,
        Value::Integer(i64::from(c.attempts_left)),
        time(c.next_send_at)?,
        time(c.solved_at)?,
        time(c.used_at)?,
        time(c.invalidated_at)?,
    ])
}

const MUTABLE: [&str; 8] = [
    "body_hash",
    "code",
    "code_expires_at",
    "attempts_left",
    "next_send_at",
    "solved_at",
    "used_at",
    "invalidated_at",
];

fn insert(conn: &Connection, c: &Challenge) -> Result<(), StoreError> {
    let [hash, code, expires, attempts, next, solved, used, dead] = mutable_values(c)?;
    conn.prepare_cached(&format!(
        "INSERT INTO tan_challenges ({COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))?
    .execute(params![
        &c.id.as_bytes()[..],
        c.account_id,
        c.operation.as_str(),
        c.role.as_str(),
        c.channel.as_str(),
        c.address,
        &c.body_salt[..],
        hash,
        code,
        expires,
        attempts,
        next,
        micros_to_sql(c.created_at)?,
        solved,
        used,
        dead,
    ])?;
    Ok(())
}

fn read_challenge(row: &Row<'_>) -> rusqlite::Result<Result<Challenge, StoreError>> {
    let id: Vec<u8> = row.get(0)?;
    let account_id: i64 = row.get(1)?;
    let op: String = row.get(2)?;
    let role: String = row.get(3)?;
    let channel: String = row.get(4)?;
    let address: String = row.get(5)?;
    let salt: Vec<u8> = row.get(6)?;
    let hash: Option<Vec<u8>> = row.get(7)?;
    let code: Option<String> = row.get(8)?;
    let code_expires_at: Option<i64> = row.get(9)?;
    let attempts_left: i64 = row.get(10)?;
    let next_send_at: Option<i64> = row.get(11)?;
    let created_at: i64 = row.get(12)?;
    let solved_at: Option<i64> = row.get(13)?;
    let used_at: Option<i64> = row.get(14)?;
    let invalidated_at: Option<i64> = row.get(15)?;
    Ok((|| {
        Ok(Challenge {
            id: ChallengeId::from_bytes(bytes(&id, "challenge id")?),
            account_id,
            operation: Operation::parse(&op).ok_or_else(|| corrupt("operation", &op))?,
            role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
            channel: TanChannel::parse(&channel).ok_or_else(|| corrupt("channel", &channel))?,
            address,
            body_salt: bytes(&salt, "body salt")?,
            body_hash: hash.map(|h| bytes(&h, "body hash")).transpose()?,
            code,
            code_expires_at: time_from_sql(code_expires_at)?,
            attempts_left: u32::try_from(attempts_left)
                .map_err(|_| corrupt("attempts", &attempts_left.to_string()))?,
            next_send_at: time_from_sql(next_send_at)?,
            created_at: micros_from_sql(created_at)?,
            solved_at: time_from_sql(solved_at)?,
            used_at: time_from_sql(used_at)?,
            invalidated_at: time_from_sql(invalidated_at)?,
        })
    })())
}

fn load(conn: &Connection, id: &ChallengeId) -> Result<Option<Challenge>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tan_challenges WHERE id = ?1"
    ))?
    .query_row([&id.as_bytes()[..]], read_challenge)
    .optional()?
    .transpose()
}

impl TanStore for SqliteTanStore {
    fn create(&self, challenges: &[Challenge]) -> Result<(), StoreError> {
        let challenges = challenges.to_vec();
        self.db.write(move |conn| {
            for challenge in &challenges {
                insert(conn, challenge)?;
            }
            Ok(())
        })
    }

    fn challenge(
        &self,
        account_id: i64,
        id: &ChallengeId,
    ) -> Result<Option<Challenge>, StoreError> {
        self.db
            .read(|conn| Ok(load(conn, id)?.filter(|challenge| challenge.account_id == account_id)))
    }

    fn replace(&self, expected: &Challenge, new: &Challenge) -> Result<bool, StoreError> {
        if expected.id != new.id {
            return Ok(false);
        }
        let old_values = mutable_values(expected)?;
        let new_values = mutable_values(new)?;
        let id = *expected.id.as_bytes();
        self.db.write(move |conn| {
            let set: Vec<String> = MUTABLE
                .iter()
                .enumerate()
                .map(|(i, column)| format!("{column} = ?{}", i + 2))
                .collect();
            let check: Vec<String> = MUTABLE
                .iter()
                .enumerate()
                .map(|(i, column)| format!("{column} IS ?{}", i + 10))
                .collect();
            let sql = format!(
                "UPDATE tan_challenges SET {} WHERE id = ?1 AND {}",
                set.join(", "),
                check.join(" AND ")
            );
            let mut values: Vec<rusqlite::types::Value> = vec![id.to_vec().into()];
            values.extend(new_values);
            values.extend(old_values);
            let changed = conn
                .prepare_cached(&sql)?
                .execute(rusqlite::params_from_iter(values))?;
            Ok(changed == 1)
        })
    }

    fn consume(
        &self,
        account_id: i64,
        used: &[ChallengeId],
        invalidate_others: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let used = used.to_vec();
        let now = micros_to_sql(now)?;
        self.db.write(move |conn| {
            if !usable_in(conn, account_id, &used)? {
                return Ok(false);
            }
            mark_in(conn, account_id, &used, invalidate_others, now)?;
            Ok(true)
        })
    }

    fn purge_before(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let cutoff = micros_to_sql(cutoff)?;
        self.db.write(move |conn| {
            let deleted = conn
                .prepare_cached(
                    "DELETE FROM tan_challenges WHERE max(created_at, \
                     coalesce(code_expires_at, 0), coalesce(next_send_at, 0), \
                     coalesce(solved_at, 0), coalesce(used_at, 0), \
                     coalesce(invalidated_at, 0)) < ?1",
                )?
                .execute([cutoff])?;
            Ok(deleted)
        })
    }
}

/// Whether every challenge of `used` belongs to the account and is solved, unused and alive.
pub(super) fn usable_in(
    conn: &Connection,
    account_id: i64,
    used: &[ChallengeId],
) -> Result<bool, StoreError> {
    for id in used {
        let usable = load(conn, id)?.is_some_and(|c| {
            c.account_id == account_id
                && c.solved_at.is_some()
                && c.used_at.is_none()
                && c.invalidated_at.is_none()
        });
        if !usable {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Marks `used` used and, with `invalidate_others`, kills the account's other open
/// challenges (§4.4, §8.3); `now` in database microseconds.
pub(super) fn mark_in(
    conn: &Connection,
    account_id: i64,
    used: &[ChallengeId],
    invalidate_others: bool,
    now: i64,
) -> Result<(), StoreError> {
    for id in used {
        conn.prepare_cached(
            "UPDATE tan_challenges SET used_at = ?2, body_hash = NULL WHERE id = ?1",
        )?
        .execute(params![&id.as_bytes()[..], now])?;
    }
    if invalidate_others {
        conn.prepare_cached(
            "UPDATE tan_challenges SET invalidated_at = ?2, body_hash = NULL \
             WHERE account_id = ?1 AND used_at IS NULL AND invalidated_at IS NULL",
        )?
        .execute(params![account_id, now])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::DbOptions;
    use crate::ports::tan_conformance::{ACCOUNT, OTHER, tan_store_conformance};

    fn temp_store() -> (tempfile::TempDir, SqliteTanStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.sqlite3"), &DbOptions::default()).unwrap();
        db.write(|conn| -> Result<(), StoreError> {
            for id in [ACCOUNT, OTHER] {
                conn.execute(
                    "INSERT INTO bank_accounts (id, username, password_hash, name, is_public, \
                     is_taler_exchange, address, currency, balance_value, balance_fraction, \
                     has_debt, max_debt_value, max_debt_fraction, tan_channels, created_at) \
                     VALUES (?1, 'u' || ?1, 'x', 'n', 0, 0, 'payto://x/' || ?1, 'KUDOS', \
                     0, 0, 0, 0, 0, '', 0)",
                    [id],
                )?;
            }
            Ok(())
        })
        .unwrap();
        (dir, SqliteTanStore::new(Arc::new(db)))
    }

    mod conformance {
        use super::*;
        tan_store_conformance!(guarded: temp_store());
    }

    #[test]
    fn a_deleted_account_row_takes_its_challenges_along() {
        let (_dir, store) = temp_store();
        let random = crate::ports::random::SeededRandom::new(9);
        let challenge = Challenge {
            id: ChallengeId::generate(&random),
            account_id: ACCOUNT,
            operation: Operation::AccountDelete,
            role: Role::Auth,
            channel: TanChannel::Sms,
            address: "+1".into(),
            body_salt: [0; 16],
            body_hash: Some([1; 32]),
            code: None,
            code_expires_at: None,
            attempts_left: 3,
            next_send_at: None,
            created_at: Timestamp::EPOCH,
            solved_at: None,
            used_at: None,
            invalidated_at: None,
        };
        store.create(std::slice::from_ref(&challenge)).unwrap();
        store
            .db
            .write(move |conn| -> Result<usize, StoreError> {
                Ok(conn.execute("DELETE FROM bank_accounts WHERE id = ?1", [ACCOUNT])?)
            })
            .unwrap();
        assert_eq!(store.challenge(ACCOUNT, &challenge.id).unwrap(), None);
    }
}
