//! The TAN service: the gate over stored challenges, and the unauthenticated send and
//! confirm endpoints (corebank-tan.md §4–§6), over the `TanStore`, `Sender`, `Clock` and
//! `Random` ports.

use std::sync::Arc;

use serde::Serialize;

use super::gate::{Decision, decide};
use super::model::{
    BodyKey, Challenge, ChallengeId, Factor, RequestBinding, TanSettings, code_message,
};
use super::transitions::{SendTicket, confirm, reserve_send, undo_failed_send};
use crate::domain::accounts::TanChannel;
use crate::domain::primitives::{ErrorCode, TalerError, Timestamp};
use crate::ports::clock::Clock;
use crate::ports::random::Random;
use crate::ports::sender::Sender;
use crate::ports::tan::TanStore;

/// How often a compare-and-swap is retried against concurrent changes of one challenge.
const CAS_ATTEMPTS: usize = 8;

/// An error with the status the bank answers it with (the same code has different statuses
/// on different steps, e.g. 5144 as 404 and as 409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TanFailure {
    pub status: u16,
    pub error: TalerError,
}

impl TanFailure {
    fn new(status: u16, code: ErrorCode) -> Self {
        TanFailure {
            status,
            error: TalerError::new(code),
        }
    }

    fn not_found() -> Self {
        TanFailure::new(404, ErrorCode::BankTransactionNotFound)
    }

    fn contention() -> Self {
        TanFailure::new(503, ErrorCode::GenericDbSoftFailure)
    }
}

impl From<crate::ports::StoreError> for TanFailure {
    fn from(error: crate::ports::StoreError) -> Self {
        let error = TalerError::from(error);
        let status = if error.code == ErrorCode::GenericDbSoftFailure {
            503
        } else {
            500
        };
        TanFailure { status, error }
    }
}

/// One entry of the 202 body (§4.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChallengeEntry {
    pub challenge_id: String,
    pub tan_channel: TanChannel,
    pub tan_info: String,
}

/// The 202 body (§4.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChallengeResponse {
    pub challenges: Vec<ChallengeEntry>,
    pub combi_and: bool,
}

/// The 200 body of a send (§5 step 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendAnswer {
    pub solve_expiration: Timestamp,
    pub earliest_retransmission: Timestamp,
}

/// What the gate lets a protected request do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutcome {
    /// Run it, consuming these challenges in the same transaction as the change.
    Proceed { used: Vec<ChallengeId> },
    /// Answer 202 with this body; the challenges are stored.
    Challenged(ChallengeResponse),
}

/// The delivery of each channel; `None` when its script is not configured.
#[derive(Clone, Default)]
pub struct TanSenders {
    pub sms: Option<Arc<dyn Sender>>,
    pub email: Option<Arc<dyn Sender>>,
}

impl TanSenders {
    fn of(&self, channel: TanChannel) -> Option<&Arc<dyn Sender>> {
        match channel {
            TanChannel::Sms => self.sms.as_ref(),
            TanChannel::Email => self.email.as_ref(),
        }
    }
}

/// A protected request as the gate sees it: the service, the ids of `Taler-Challenge-Ids`
/// and the canonical body.
pub struct TanRequest<'a> {
    pub service: &'a TanService,
    pub presented: Vec<ChallengeId>,
    pub body: super::model::CanonicalBody,
}

pub struct TanService {
    store: Arc<dyn TanStore>,
    senders: TanSenders,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    key: BodyKey,
    settings: TanSettings,
    bank_name: String,
}

impl TanService {
    pub fn new(
        store: Arc<dyn TanStore>,
        senders: TanSenders,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        key: BodyKey,
        settings: TanSettings,
        bank_name: String,
    ) -> Self {
        TanService {
            store,
            senders,
            clock,
            random,
            key,
            settings,
            bank_name,
        }
    }

    /// §4.2 for a gated request: `current` is F, `new` is N, `presented` the ids of
    /// `Taler-Challenge-Ids`. A 202 stores its new challenges before answering.
    pub fn gate(
        &self,
        current: &[Factor],
        new: &[Factor],
        presented: &[ChallengeId],
        binding: &RequestBinding,
    ) -> Result<GateOutcome, TanFailure> {
        let mut loaded = Vec::with_capacity(presented.len());
        for id in presented {
            if let Some(challenge) = self.store.challenge(binding.account_id, id)? {
                loaded.push(challenge);
            }
        }
        let now = self.clock.now();
        match decide(
            current,
            new,
            &loaded,
            &self.key,
            binding,
            &self.settings,
            now,
        ) {
            Decision::Proceed { used } => Ok(GateOutcome::Proceed { used }),
            Decision::Challenge {
                role,
                factors,
                combi_and,
            } => {
                let challenges: Vec<Challenge> = factors
                    .iter()
                    .map(|factor| {
                        Challenge::new(
                            self.random.as_ref(),
                            &self.key,
                            binding,
                            role,
                            factor,
                            &self.settings,
                            now,
                        )
                    })
                    .collect();
                self.store.create(&challenges)?;
                Ok(GateOutcome::Challenged(ChallengeResponse {
                    challenges: challenges
                        .into_iter()
                        .map(|c| ChallengeEntry {
                            challenge_id: c.id.encode(),
                            tan_channel: c.channel,
                            tan_info: c.address,
                        })
                        .collect(),
                    combi_and,
                }))
            }
        }
    }

    /// The challenge `id_text` of the account, or 404/5107 (§5 step 1, §6 step 2).
    fn find(&self, account_id: Option<i64>, id_text: &str) -> Result<Challenge, TanFailure> {
        let account_id = account_id.ok_or_else(TanFailure::not_found)?;
        let id = ChallengeId::parse(id_text).ok_or_else(TanFailure::not_found)?;
        self.store
            .challenge(account_id, &id)?
            .ok_or_else(TanFailure::not_found)
    }

    /// POST /accounts/$U/challenge/$ID (§5). `account_id` is `None` for an unknown or
    /// deleted account.
    pub fn send(&self, account_id: Option<i64>, id_text: &str) -> Result<SendAnswer, TanFailure> {
        let (reserved, ticket) = self.reserve(account_id, id_text)?;
        let message = code_message(&ticket.code, &self.bank_name);
        let delivered = match self.senders.of(reserved.channel) {
            Some(sender) => sender.send(&reserved.address, &message),
            None => Err(crate::ports::sender::SendError(
                "channel no longer configured".into(),
            )),
        };
        if let Err(error) = delivered {
            tracing::warn!(channel = reserved.channel.as_str(), %error, "TAN delivery failed");
            self.undo(reserved, &ticket)?;
            return Err(TanFailure::new(502, ErrorCode::BankTanChannelScriptFailed));
        }
        Ok(SendAnswer {
            solve_expiration: ticket.solve_expiration,
            earliest_retransmission: ticket.earliest_retransmission,
        })
    }

    /// §5 steps 2–6 by compare-and-swap; answers the stored state and the ticket.
    fn reserve(
        &self,
        account_id: Option<i64>,
        id_text: &str,
    ) -> Result<(Challenge, SendTicket), TanFailure> {
        for _ in 0..CAS_ATTEMPTS {
            let stored = self.find(account_id, id_text)?;
            let mut next = stored.clone();
            let supported = self.senders.of(stored.channel).is_some();
            let ticket = reserve_send(
                &mut next,
                supported,
                self.random.as_ref(),
                &self.settings,
                self.clock.now(),
            )
            .map_err(|refusal| TanFailure {
                status: refusal.status(),
                error: refusal.error(),
            })?;
            if self.store.replace(&stored, &next)? {
                return Ok((next, ticket));
            }
        }
        Err(TanFailure::contention())
    }

    /// §5 step 7: gives the retransmission period back after a failed delivery, unless the
    /// challenge moved on meanwhile (then there is nothing to restore).
    fn undo(&self, reserved: Challenge, ticket: &SendTicket) -> Result<(), TanFailure> {
        let mut restored = reserved.clone();
        undo_failed_send(&mut restored, ticket);
        self.store.replace(&reserved, &restored)?;
        Ok(())
    }

    /// POST /accounts/$U/challenge/$ID/confirm (§6 steps 2–7); `Ok` is 204.
    pub fn confirm(
        &self,
        account_id: Option<i64>,
        id_text: &str,
        tan: &str,
    ) -> Result<(), TanFailure> {
        for _ in 0..CAS_ATTEMPTS {
            let stored = self.find(account_id, id_text)?;
            let mut next = stored.clone();
            let outcome = confirm(&mut next, tan, self.clock.now());
            if next != stored && !self.store.replace(&stored, &next)? {
                continue;
            }
            return match outcome.error() {
                None => Ok(()),
                Some(error) => Err(TanFailure {
                    status: outcome.status(),
                    error,
                }),
            };
        }
        Err(TanFailure::contention())
    }

    /// The bank's garbage collection (§3.5): deletes the challenges whose last event is
    /// older than `GC_CLEAN_AFTER`; answers how many. Nothing with a `forever` setting.
    pub fn purge_stale(&self) -> Result<usize, TalerError> {
        let keep = self.settings.clean_after;
        if keep.is_forever() {
            return Ok(0);
        }
        let now = self.clock.now().as_micros();
        let cutoff = Timestamp::from_micros(now.saturating_sub(keep.as_micros()));
        Ok(self.store.purge_before(cutoff)?)
    }

    /// Consumes the challenges a successful request used (§4.4) and, when the factor set
    /// changed, kills the account's other open challenges (§8.3).
    pub fn consume(
        &self,
        account_id: i64,
        used: &[ChallengeId],
        factors_changed: bool,
    ) -> Result<bool, TanFailure> {
        Ok(self
            .store
            .consume(account_id, used, factors_changed, self.clock.now())?)
    }
}
