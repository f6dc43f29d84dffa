//! Throttling of guesses: failed bank password logins, wrong AML officer signatures and wrong
//! challenger PINs spend budgets per client address and per account from that address
//! (`[talerbox] THROTTLE_*`). A request whose budget is spent is answered 429 with
//! `Retry-After` before anything is checked, so guessing slows to the configured rate, while
//! the right password from another address still gets in.
//!
//! The budgets are governor's GCRA limiters, spent by failures only; an exhausted budget
//! blocks its key until governor would accept the next failure. Since a failure is known only
//! once the guess has been checked, guesses take turns: one at a time per account from an
//! address, a few at a time per address, so that a burst of parallel requests cannot slip
//! past a budget before its failures are counted.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use super::error::ApiError;
use crate::config::ThrottleSettings;
use crate::domain::primitives::ErrorCode;

/// Tracked keys beyond which expired entries are dropped.
const PRUNE_AT: usize = 10_000;
/// Accounts are keyed by at most this many bytes of their name.
const ACCOUNT_KEY_BYTES: usize = 128;
/// Guesses from one address checked at once (password checks run one per core anyway).
const ADDRESS_TURNS: usize = 4;
/// Officer reads from one address, and of one officer from it, served at once.
const OFFICER_TURNS: usize = 8;

/// What is being guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guess {
    /// A bank password in Basic authentication (failure: 401).
    BankPassword,
    /// An AML officer's query signature (failure: 403).
    OfficerSignature,
    /// A challenger PIN (failure: 403, or the spec's own 429).
    Pin,
}

impl Guess {
    /// The `kind` label of the throttle's metric.
    fn label(self) -> &'static str {
        match self {
            Guess::BankPassword => "bank_password",
            Guess::OfficerSignature => "officer_signature",
            Guess::Pin => "pin",
        }
    }

    fn failed(self, status: StatusCode) -> bool {
        match self {
            Guess::BankPassword => status == StatusCode::UNAUTHORIZED,
            Guess::OfficerSignature => status == StatusCode::FORBIDDEN,
            Guess::Pin => {
                status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS
            }
        }
    }

    /// The 429 code of the service: the bank's and the challenger's own; the exchange has
    /// none, so the one Taler names for throttled HTTP requests.
    fn code(self) -> ErrorCode {
        match self {
            Guess::BankPassword => ErrorCode::BankTanRateLimited,
            Guess::OfficerSignature => ErrorCode::WalletHttpRequestThrottled,
            Guess::Pin => ErrorCode::ChallengerTooManyAttempts,
        }
    }

    /// How many guesses (per client address, per account from that address) are checked at
    /// once. A password check takes a core for milliseconds and a PIN spends an attempt:
    /// they take turns one by one per account. An officer's signature costs microseconds
    /// to check and its reads are many (an officer's pages load several at once): a burst
    /// may pass the budget by at most the account's turns.
    fn turns(self) -> (usize, usize) {
        match self {
            Guess::BankPassword | Guess::Pin => (ADDRESS_TURNS, 1),
            Guess::OfficerSignature => (OFFICER_TURNS, OFFICER_TURNS),
        }
    }

    /// The account the request guesses for, if it is a guess at all.
    fn account(self, request: &Request) -> Option<String> {
        let account = match self {
            Guess::BankPassword => basic_username(request.headers())?,
            // Only reads carry the header signature; a decision's signature covers its body
            // and is checked (and refused with its own codes) by the decision itself.
            Guess::OfficerSignature if request.method() != axum::http::Method::GET => return None,
            Guess::OfficerSignature => segment_after(request.uri().path(), "aml")?,
            Guess::Pin => segment_after(request.uri().path(), "solve")?,
        };
        let mut end = account.len().min(ACCOUNT_KEY_BYTES);
        while !account.is_char_boundary(end) {
            end -= 1;
        }
        Some(account[..end].to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Account(Guess, String, IpAddr),
}

pub struct Throttle {
    addresses: DefaultKeyedRateLimiter<Key>,
    accounts: DefaultKeyedRateLimiter<Key>,
    /// Keys whose budget is spent, until when.
    blocked: Mutex<HashMap<Key, Instant>>,
    /// The turns of keys with guesses in flight, by key and number of turns (kinds of
    /// guesses with different numbers of turns wait separately).
    turns: Mutex<HashMap<(Key, usize), Arc<Semaphore>>>,
    trusted_proxies: Vec<IpAddr>,
    /// Refusals by kind of guess (a metric).
    refusals: Family<RefusalLabels, Counter>,
}

/// The label of the throttle's metric: which kind of guess was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    kind: &'static str,
}

/// A guess's turn on one key; the key's entry goes when its last turn ends.
struct Turn<'a> {
    throttle: &'a Throttle,
    key: (Key, usize),
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut turns = self
            .throttle
            .turns
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        drop(self.permit.take());
        // Only the map's own reference left: nobody holds or awaits a turn.
        if turns
            .get(&self.key)
            .is_some_and(|semaphore| Arc::strong_count(semaphore) == 1)
        {
            turns.remove(&self.key);
        }
    }
}

fn quota(burst: u32, interval: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(interval)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Throttle {
    pub fn new(settings: &ThrottleSettings) -> Throttle {
        Throttle {
            addresses: RateLimiter::keyed(quota(settings.address_burst, settings.address_interval)),
            accounts: RateLimiter::keyed(quota(settings.account_burst, settings.account_interval)),
            blocked: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
            trusted_proxies: settings.trusted_proxies.clone(),
            refusals: Family::default(),
        }
    }

    /// The count of refused guesses by kind, for the metrics registry.
    pub fn refusals(&self) -> Family<RefusalLabels, Counter> {
        self.refusals.clone()
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the last
    /// address in `X-Forwarded-For` that is not one.
    fn client(&self, request: &Request) -> IpAddr {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map_while(|address| address.trim().parse().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|address| !self.trusted_proxies.contains(address))
            .unwrap_or(peer)
    }

    /// Waits for a turn on `key`, of which `turns` may be taken at once.
    async fn turn(&self, key: &Key, turns: usize) -> Turn<'_> {
        let semaphore = {
            let mut map = self.turns.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= PRUNE_AT {
                // Entries left behind by guesses abandoned while they waited.
                map.retain(|_, semaphore| Arc::strong_count(semaphore) > 1);
            }
            Arc::clone(
                map.entry((key.clone(), turns))
                    .or_insert_with(|| Arc::new(Semaphore::new(turns))),
            )
        };
        let permit = semaphore.acquire_owned().await.ok();
        Turn {
            throttle: self,
            key: (key.clone(), turns),
            permit,
        }
    }

    fn keys(guess: Guess, account: &str, client: IpAddr) -> [Key; 2] {
        [
            Key::Address(client),
            Key::Account(guess, account.to_owned(), client),
        ]
    }

    /// How long `client` must still wait before guessing for `account`, if at all.
    fn wait(&self, keys: &[Key; 2]) -> Option<Duration> {
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        keys.iter()
            .filter_map(|key| blocked.get(key))
            .filter(|until| **until > now)
            .map(|until| *until - now)
            .max()
    }

    /// Spends one failure of each budget; a spent budget blocks its key.
    fn failed(&self, keys: [Key; 2]) {
        let [address, account] = keys;
        for (limiter, key) in [(&self.addresses, address), (&self.accounts, account)] {
            if let Err(not_until) = limiter.check_key(&key) {
                let wait = not_until.wait_time_from(limiter.clock().now());
                let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                if blocked.len() >= PRUNE_AT {
                    blocked.retain(|_, until| *until > now);
                }
                blocked.insert(key, now + wait);
            }
            if limiter.len() >= PRUNE_AT {
                limiter.retain_recent();
            }
        }
    }
}

/// Layer around the routes where `guess` happens (a hand-written service rather than a
/// middleware function: requests that guess nothing pass with one allocation).
#[derive(Clone)]
pub struct GuardLayer {
    pub throttle: Arc<Throttle>,
    pub guess: Guess,
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            throttle: Arc::clone(&self.throttle),
            guess: self.guess,
        }
    }
}

#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    throttle: Arc<Throttle>,
    guess: Guess,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for Guarded<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Answer {
        let Some(account) = self.guess.account(&request) else {
            return Box::pin(self.inner.call(request));
        };
        // The service that was made ready is the one that is called, after the turns.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        let (throttle, guess) = (Arc::clone(&self.throttle), self.guess);
        Box::pin(async move { Ok(guard(&throttle, guess, &account, request, inner).await) })
    }
}

/// Serves a guess at `account`: waits for its turns, refuses it while its budget is spent,
/// and spends the budget when it fails.
async fn guard<S>(
    throttle: &Throttle,
    guess: Guess,
    account: &str,
    request: Request,
    mut inner: S,
) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let keys = Throttle::keys(guess, account, throttle.client(&request));
    // Always the address first, then the account: no two guesses wait for each other in turn.
    let (address_turns, account_turns) = guess.turns();
    let _address_turn = throttle.turn(&keys[0], address_turns).await;
    let _account_turn = throttle.turn(&keys[1], account_turns).await;
    if let Some(wait) = throttle.wait(&keys) {
        let kind = guess.label();
        throttle
            .refusals
            .get_or_create(&RefusalLabels { kind })
            .inc();
        return too_many(guess, wait);
    }
    let Ok(response) = inner.call(request).await;
    if guess.failed(response.status()) {
        throttle.failed(keys);
    }
    response
}

fn too_many(guess: Guess, wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, guess.code())
        .with_detail(format!("too many failed attempts; retry in {seconds} s"))
        .into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// The username of a Basic `Authorization` header.
fn basic_username(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = data_encoding::BASE64
        .decode(credentials.trim().as_bytes())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, _) = text.split_once(':')?;
    Some(username.to_owned())
}

/// The path segment after the segment `name`, e.g. the nonce of `/solve/NONCE`.
fn segment_after(path: &str, name: &str) -> Option<String> {
    let mut segments = path.split('/');
    segments.find(|segment| *segment == name)?;
    segments
        .next()
        .filter(|segment| !segment.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(trusted: &[&str]) -> ThrottleSettings {
        ThrottleSettings {
            address_burst: 5,
            address_interval: Duration::from_secs(60),
            account_burst: 2,
            account_interval: Duration::from_secs(60),
            trusted_proxies: trusted.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn request(peer: &str, forwarded: Option<&str>) -> Request {
        let mut request = Request::new(axum::body::Body::empty());
        request
            .extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(peer.parse().unwrap()));
        if let Some(forwarded) = forwarded {
            request
                .headers_mut()
                .insert("x-forwarded-for", HeaderValue::from_str(forwarded).unwrap());
        }
        request
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let throttle = Throttle::new(&settings(&["10.0.0.1", "10.0.0.2"]));
        let client = |peer, forwarded| throttle.client(&request(peer, forwarded));
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(client("192.0.2.7:1", Some("198.51.100.1")), ip("192.0.2.7"));
        assert_eq!(client("10.0.0.1:1", None), ip("10.0.0.1"));
        assert_eq!(
            client("10.0.0.1:1", Some("203.0.113.9, 198.51.100.1, 10.0.0.2")),
            ip("198.51.100.1")
        );
        assert_eq!(client("10.0.0.1:1", Some("garbage")), ip("10.0.0.1"));
    }

    #[test]
    fn failures_spend_the_account_and_the_address_budgets() {
        let throttle = Throttle::new(&settings(&[]));
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let there: IpAddr = "192.0.2.2".parse().unwrap();
        let keys = |account: &str, client| Throttle::keys(Guess::BankPassword, account, client);
        // Two failures at once are allowed on an account, the third spends the budget.
        for _ in 0..3 {
            assert_eq!(throttle.wait(&keys("alice", here)), None);
            throttle.failed(keys("alice", here));
        }
        let wait = throttle.wait(&keys("alice", here)).unwrap();
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        // Another address still may try alice; another account from here too, until the
        // address budget (5) is spent as well.
        assert_eq!(throttle.wait(&keys("alice", there)), None);
        assert_eq!(throttle.wait(&keys("bob", here)), None);
        for _ in 0..3 {
            throttle.failed(keys("bob", here));
        }
        assert!(throttle.wait(&keys("carol", here)).is_some());
        assert_eq!(throttle.wait(&keys("carol", there)), None);
    }

    #[tokio::test]
    async fn turns_are_taken_one_at_a_time_and_forgotten_when_done() {
        let throttle = Throttle::new(&settings(&[]));
        let key = Key::Address("192.0.2.1".parse().unwrap());
        let first = throttle.turn(&key, 1).await;
        let second = throttle.turn(&key, 1);
        tokio::pin!(second);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), second.as_mut())
                .await
                .is_err(),
            "a second turn while the first is held"
        );
        drop(first);
        let second = second.await;
        assert_eq!(throttle.turns.lock().unwrap().len(), 1);
        drop(second);
        assert!(throttle.turns.lock().unwrap().is_empty());
    }

    #[test]
    fn accounts_are_read_from_the_request() {
        let mut basic = request("192.0.2.1:1", None);
        basic.headers_mut().insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic YWxpY2U6cHc="),
        );
        assert_eq!(
            Guess::BankPassword.account(&basic).as_deref(),
            Some("alice")
        );
        let bearer = request("192.0.2.1:1", None);
        assert_eq!(Guess::BankPassword.account(&bearer), None);
        assert_eq!(
            segment_after("/challenger/solve/N0NCE", "solve").as_deref(),
            Some("N0NCE")
        );
        assert_eq!(
            segment_after("/aml/PUB/decisions", "aml").as_deref(),
            Some("PUB")
        );
        assert_eq!(segment_after("/aml", "aml"), None);
        // Officer reads are guesses at the header signature; decisions are not.
        let mut read = request("192.0.2.1:1", None);
        *read.uri_mut() = "/aml/PUB/decisions".parse().unwrap();
        assert_eq!(
            Guess::OfficerSignature.account(&read).as_deref(),
            Some("PUB")
        );
        *read.method_mut() = axum::http::Method::POST;
        *read.uri_mut() = "/aml/PUB/decision".parse().unwrap();
        assert_eq!(Guess::OfficerSignature.account(&read), None);
    }
}
