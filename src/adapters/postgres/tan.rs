//! `TanStore` on PostgreSQL (schema: `migrations/0007_bank_tan.sql`). Every mutation is one
//! transaction; a challenge changes by compare-and-swap on its whole mutable state in one
//! `UPDATE`. Consuming reads, decides and writes, so it locks first (`usable_in`). A corrupt
//! row is `StoreError::Internal`.

use std::sync::Arc;

use postgres::types::ToSql;
use postgres::{GenericClient, Row};

use super::{PgDatabase, PgError, Session};
use crate::adapters::convert::{bytes, corrupt, micros_from_sql, micros_to_sql};
use crate::domain::accounts::TanChannel;
use crate::domain::primitives::Timestamp;
use crate::domain::tan::{Challenge, ChallengeId, Operation, Role};
use crate::ports::StoreError;
use crate::ports::tan::TanStore;

pub struct PgTanStore {
    db: Arc<PgDatabase>,
}

impl PgTanStore {
    pub fn new(db: Arc<PgDatabase>) -> PgTanStore {
        PgTanStore { db }
    }
}

const COLUMNS: &str = "id, account_id, op, role, channel, address, body_salt, body_hash, code, \
     code_expires_at, attempts_left, next_send_at, created_at, solved_at, used_at, \
     invalidated_at";

/// Stores `new` over a challenge whose mutable columns still hold `expected` (`$10`–`$17`).
const REPLACE: &str = "UPDATE tan_challenges SET body_hash = $2, code = $3,
         code_expires_at = $4, attempts_left = $5, next_send_at = $6, solved_at = $7,
         used_at = $8, invalidated_at = $9
     WHERE id = $1 AND body_hash IS NOT DISTINCT FROM $10 AND code IS NOT DISTINCT FROM $11
         AND code_expires_at IS NOT DISTINCT FROM $12 AND attempts_left = $13
         AND next_send_at IS NOT DISTINCT FROM $14 AND solved_at IS NOT DISTINCT FROM $15
         AND used_at IS NOT DISTINCT FROM $16 AND invalidated_at IS NOT DISTINCT FROM $17";

/// The mutable columns of a challenge, in `REPLACE`'s order.
struct Mutable {
    body_hash: Option<Vec<u8>>,
    code: Option<String>,
    code_expires_at: Option<i64>,
    attempts_left: i64,
    next_send_at: Option<i64>,
    solved_at: Option<i64>,
    used_at: Option<i64>,
    invalidated_at: Option<i64>,
}

impl Mutable {
    fn of(c: &Challenge) -> Result<Mutable, StoreError> {
        Ok(Mutable {
            body_hash: c.body_hash.map(|h| h.to_vec()),
            code: c.code.clone(),
            code_expires_at: time_to_sql(c.code_expires_at)?,
            attempts_left: i64::from(c.attempts_left),
            next_send_at: time_to_sql(c.next_send_at)?,
            solved_at: time_to_sql(c.solved_at)?,
            used_at: time_to_sql(c.used_at)?,
            invalidated_at: time_to_sql(c.invalidated_at)?,
        })
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.body_hash,
            &self.code,
            &self.code_expires_at,
            &self.attempts_left,
            &self.next_send_at,
            &self.solved_at,
            &self.used_at,
            &self.invalidated_at,
        ]
    }
}

fn time_to_sql(time: Option<Timestamp>) -> Result<Option<i64>, StoreError> {
    time.map(micros_to_sql).transpose()
}

fn time_from_sql(micros: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    micros.map(micros_from_sql).transpose()
}

fn insert<C: GenericClient>(s: &mut Session<'_, C>, c: &Challenge) -> Result<(), PgError> {
    let m = Mutable::of(c)?;
    let created_at = micros_to_sql(c.created_at)?;
    s.execute(
        &format!(
            "INSERT INTO tan_challenges ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ),
        &[
            &&c.id.as_bytes()[..],
            &c.account_id,
            &c.operation.as_str(),
            &c.role.as_str(),
            &c.channel.as_str(),
            &c.address,
            &&c.body_salt[..],
            &m.body_hash,
            &m.code,
            &m.code_expires_at,
            &m.attempts_left,
            &m.next_send_at,
            &created_at,
            &m.solved_at,
            &m.used_at,
            &m.invalidated_at,
        ],
    )?;
    Ok(())
}

fn read_challenge(row: &Row) -> Result<Challenge, PgError> {
    let id: &[u8] = row.try_get(0)?;
    let op: &str = row.try_get(2)?;
    let role: &str = row.try_get(3)?;
    let channel: &str = row.try_get(4)?;
    let salt: &[u8] = row.try_get(6)?;
    let hash: Option<&[u8]> = row.try_get(7)?;
    let attempts_left: i64 = row.try_get(10)?;
    Ok(Challenge {
        id: ChallengeId::from_bytes(bytes(id, "challenge id")?),
        account_id: row.try_get(1)?,
        operation: Operation::parse(op).ok_or_else(|| corrupt("operation", op))?,
        role: Role::parse(role).ok_or_else(|| corrupt("role", role))?,
        channel: TanChannel::parse(channel).ok_or_else(|| corrupt("channel", channel))?,
        address: row.try_get(5)?,
        body_salt: bytes(salt, "body salt")?,
        body_hash: hash.map(|h| bytes(h, "body hash")).transpose()?,
        code: row.try_get(8)?,
        code_expires_at: time_from_sql(row.try_get(9)?)?,
        attempts_left: u32::try_from(attempts_left)
            .map_err(|_| corrupt("attempts", &attempts_left.to_string()))?,
        next_send_at: time_from_sql(row.try_get(11)?)?,
        created_at: micros_from_sql(row.try_get(12)?)?,
        solved_at: time_from_sql(row.try_get(13)?)?,
        used_at: time_from_sql(row.try_get(14)?)?,
        invalidated_at: time_from_sql(row.try_get(15)?)?,
    })
}

impl TanStore for PgTanStore {
    fn create(&self, challenges: &[Challenge]) -> Result<(), StoreError> {
        self.db.write(|s| {
            for challenge in challenges {
                insert(s, challenge)?;
            }
            Ok(())
        })
    }

    fn challenge(
        &self,
        account_id: i64,
        id: &ChallengeId,
    ) -> Result<Option<Challenge>, StoreError> {
        self.db.read(|s| {
            let row = s.query_opt(
                &format!("SELECT {COLUMNS} FROM tan_challenges WHERE id = $1 AND account_id = $2"),
                &[&&id.as_bytes()[..], &account_id],
            )?;
            row.as_ref().map(read_challenge).transpose()
        })
    }

    fn replace(&self, expected: &Challenge, new: &Challenge) -> Result<bool, StoreError> {
        if expected.id != new.id {
            return Ok(false);
        }
        let old = Mutable::of(expected)?;
        let new = Mutable::of(new)?;
        let id = expected.id.as_bytes().to_vec();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id];
        params.extend(new.params());
        params.extend(old.params());
        self.db.write(|s| Ok(s.execute(REPLACE, &params)? == 1))
    }

    fn consume(
        &self,
        account_id: i64,
        used: &[ChallengeId],
        invalidate_others: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let now = micros_to_sql(now)?;
        self.db.write(|s| {
            if !usable_in(s, account_id, used)? {
                return Ok(false);
            }
            mark_in(s, account_id, used, invalidate_others, now)?;
            Ok(true)
        })
    }

    fn purge_before(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let cutoff = micros_to_sql(cutoff)?;
        self.db.write(|s| {
            let deleted = s.execute(
                "DELETE FROM tan_challenges WHERE GREATEST(created_at, code_expires_at,
                     next_send_at, solved_at, used_at, invalidated_at) < $1",
                &[&cutoff],
            )?;
            Ok(usize::try_from(deleted)
                .map_err(|_| StoreError::Internal(format!("{deleted} rows")))?)
        })
    }
}

/// Whether every challenge of `used` belongs to the account and is solved, unused and alive;
/// the first step of a transaction that consumes them (`consume`, and the account store's
/// change gated by a TAN).
///
/// It locks the account's row (`FOR NO KEY UPDATE`: inserts of tokens or challenges
/// referring to it go on), so consumers of one account's challenges run one at a time and
/// never deadlock over `mark_in`'s invalidation; then the challenges themselves, so that a
/// concurrent `replace` of one of them waits and then fails its compare-and-swap. The answer
/// thus stays true until the transaction ends.
pub(crate) fn usable_in<C: GenericClient>(
    s: &mut Session<'_, C>,
    account_id: i64,
    used: &[ChallengeId],
) -> Result<bool, PgError> {
    s.query_opt(
        "SELECT 1 FROM bank_accounts WHERE id = $1 FOR NO KEY UPDATE",
        &[&account_id],
    )?;
    let ids: Vec<&[u8]> = used.iter().map(|id| &id.as_bytes()[..]).collect();
    let rows = s.query(
        &format!(
            "SELECT {COLUMNS} FROM tan_challenges WHERE id = ANY($1) AND account_id = $2 \
             ORDER BY id FOR UPDATE"
        ),
        &[&ids, &account_id],
    )?;
    let found = rows
        .iter()
        .map(read_challenge)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(used.iter().all(|id| {
        found.iter().any(|c| {
            c.id == *id
                && c.solved_at.is_some()
                && c.used_at.is_none()
                && c.invalidated_at.is_none()
        })
    }))
}

/// Marks `used` used and, with `invalidate_others`, kills the account's other open
/// challenges (corebank-tan.md §4.4, §8.3); `now` in database microseconds. Call it after
/// `usable_in` answered true, in the same transaction.
pub(crate) fn mark_in<C: GenericClient>(
    s: &mut Session<'_, C>,
    account_id: i64,
    used: &[ChallengeId],
    invalidate_others: bool,
    now: i64,
) -> Result<(), PgError> {
    let ids: Vec<&[u8]> = used.iter().map(|id| &id.as_bytes()[..]).collect();
    s.execute(
        "UPDATE tan_challenges SET used_at = $3, body_hash = NULL
         WHERE id = ANY($1) AND account_id = $2",
        &[&ids, &account_id, &now],
    )?;
    if invalidate_others {
        s.execute(
            "UPDATE tan_challenges SET invalidated_at = $2, body_hash = NULL
             WHERE account_id = $1 AND used_at IS NULL AND invalidated_at IS NULL",
            &[&account_id, &now],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::postgres::testing::{self, TestSchema};
    use crate::ports::tan_conformance::{ACCOUNT, OTHER, tan_store_conformance};

    fn store() -> Option<(TestSchema, PgTanStore)> {
        let (schema, db) = testing::database()?;
        db.write(|s| {
            for id in [ACCOUNT, OTHER] {
                s.execute(
                    "INSERT INTO bank_accounts (id, username, password_hash, name, is_public,
                         is_taler_exchange, address, currency, balance_value, balance_fraction,
                         has_debt, max_debt_value, max_debt_fraction, tan_channels, created_at)
                     OVERRIDING SYSTEM VALUE
                     VALUES ($1::bigint, 'u' || $1::bigint, 'x', 'n', FALSE, FALSE,
                         'payto://x/' || $1::bigint, 'KUDOS',
                         0, 0, FALSE, 0, 0, '', 0)",
                    &[&id],
                )?;
            }
            Ok(())
        })
        .unwrap();
        Some((schema, PgTanStore::new(db)))
    }

    mod conformance {
        use super::*;
        tan_store_conformance!(optional: store());
    }

    fn challenge(random: &crate::ports::random::SeededRandom) -> Challenge {
        Challenge {
            id: ChallengeId::generate(random),
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
        }
    }

    #[test]
    fn a_deleted_account_row_takes_its_challenges_along() {
        let Some((_schema, store)) = store() else {
            return;
        };
        let random = crate::ports::random::SeededRandom::new(9);
        let challenge = challenge(&random);
        store.create(std::slice::from_ref(&challenge)).unwrap();
        store
            .db
            .write(|s| Ok(s.execute("DELETE FROM bank_accounts WHERE id = $1", &[&ACCOUNT])?))
            .unwrap();
        assert_eq!(store.challenge(ACCOUNT, &challenge.id).unwrap(), None);
    }

    #[test]
    fn a_gated_change_holds_its_challenges_until_it_commits() {
        let Some((schema, store)) = store() else {
            return;
        };
        let random = crate::ports::random::SeededRandom::new(11);
        let mut solved = challenge(&random);
        solved.solved_at = Some(Timestamp::EPOCH);
        store.create(std::slice::from_ref(&solved)).unwrap();
        let store = Arc::new(store);
        let mut spent = solved.clone();
        spent.attempts_left = 0;

        // A gated change (as the account store runs it) checks, then marks, in one
        // transaction; a concurrent compare-and-swap on the challenge waits for it and fails.
        let mut gated = schema.connect();
        let replaced = gated
            .transaction(|s| -> Result<_, PgError> {
                assert!(usable_in(s, ACCOUNT, &[solved.id])?);
                let replace = std::thread::spawn({
                    let (store, solved, spent) =
                        (Arc::clone(&store), solved.clone(), spent.clone());
                    move || store.replace(&solved, &spent)
                });
                std::thread::sleep(std::time::Duration::from_millis(300));
                assert!(
                    !replace.is_finished(),
                    "the replace waits for the gated change"
                );
                mark_in(s, ACCOUNT, &[solved.id], false, 5_000_000)?;
                Ok(replace)
            })
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        assert!(!replaced);
        let stored = store.challenge(ACCOUNT, &solved.id).unwrap().unwrap();
        assert_eq!(stored.used_at, Some(Timestamp::from_seconds(5).unwrap()));
        assert_eq!(stored.attempts_left, 3);
    }

    #[test]
    fn a_corrupt_row_is_an_internal_error() {
        let Some((_schema, store)) = store() else {
            return;
        };
        let random = crate::ports::random::SeededRandom::new(10);
        let challenge = challenge(&random);
        store.create(std::slice::from_ref(&challenge)).unwrap();
        store
            .db
            .write(|s| Ok(s.execute("UPDATE tan_challenges SET solved_at = -5", &[])?))
            .unwrap();
        assert!(matches!(
            store.challenge(ACCOUNT, &challenge.id),
            Err(StoreError::Internal(_))
        ));
    }
}
