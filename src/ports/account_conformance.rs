//! The `AccountStore` conformance suite, written once and run against every implementation
//! (`account_store_conformance!`), so that the in-memory store cannot drift from SQLite.
//!
//! Each function takes a fresh, empty store. Stores that pay bonuses need an `admin`
//! account; the suite creates it itself through `create_account`.

use crate::domain::accounts::{
    Account, AccountAddress, Balance, ContactData, Scope, TanChannel, TokenRecord, Username,
};
use crate::domain::primitives::{Amount, Iban, Timestamp};

use super::StoreError;
use super::accounts::{
    AccountChanges, AccountPage, AccountStore, AddressChoice, CreateOutcome, DeleteOutcome,
    NewAccount,
};

/// Expands to one `#[test]` per conformance function.
///
/// `account_store_conformance!(expr)` builds each store with `expr`;
/// `account_store_conformance!(guarded: expr)` takes `(guard, store)` and keeps the guard
/// (e.g. a temporary directory) alive for the test.
macro_rules! account_store_conformance {
    (guarded: $fixture:expr) => {
        $crate::ports::account_conformance::account_store_conformance!(@tests $fixture;
            create_and_read_back_every_field,
            username_taken_returns_that_account,
            fixed_address_taken,
            iban_candidates_skip_used_and_historic_ibans,
            all_candidates_taken,
            bonus_moves_money_from_admin,
            bonus_respects_the_admin_debt_limit_exactly,
            refused_bonus_creates_nothing_and_consumes_no_iban,
            bonus_without_admin_fails_and_creates_nothing,
            foreign_currency_amounts_are_refused,
            update_is_field_wise,
            deleted_or_missing_accounts_cannot_change,
            delete_outcomes,
            paging_forwards_and_backwards,
            name_filter_is_literal_and_case_sensitive,
            public_only_hides_private_and_deleted,
            tokens_insert_read_delete,
            tokens_follow_their_account,
            concurrent_creates_of_one_username,
            concurrent_bonuses_are_all_debited,
        );
    };
    (@tests $fixture:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (_guard, store) = $fixture;
                $crate::ports::account_conformance::$name(&store);
            }
        )*
    };
    // `optional:` takes `Option<(guard, store)>`; on `None` (no database configured, the
    // fixture said so on the terminal) each test returns at once.
    (optional: $fixture:expr) => {
        $crate::ports::account_conformance::account_store_conformance!(guarded: match $fixture {
            Some(fixture) => fixture,
            None => return,
        });
    };
    ($make:expr) => {
        $crate::ports::account_conformance::account_store_conformance!(guarded: ((), $make));
    };
}
pub(crate) use account_store_conformance;

// ---- helpers ----

fn kudos(text: &str) -> Amount {
    format!("KUDOS:{text}").parse().unwrap()
}

fn user(text: &str) -> Username {
    Username::parse(text).unwrap()
}

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_seconds(seconds).unwrap()
}

/// A valid German-style IBAN "DE" + check digits + `n` as 11 digits (as libeufin generates).
fn iban(n: u64) -> Iban {
    let bban = format!("{n:011}");
    let rearranged = format!("{bban}131400");
    let rest = rearranged
        .bytes()
        .fold(0u64, |acc, digit| (acc * 10 + u64::from(digit - b'0')) % 97);
    Iban::parse(&format!("DE{:02}{bban}", 98 - rest)).unwrap()
}

fn x_taler_bank(username: &str) -> AddressChoice {
    AddressChoice::Fixed(AccountAddress::XTalerBank(user(username)))
}

/// A plain account: own x-taler-bank address, no debt allowed, no bonus.
fn new_account(username: &str) -> NewAccount {
    NewAccount {
        username: user(username),
        password_hash: format!("hash-of-{username}"),
        name: format!("Name of {username}"),
        is_public: false,
        is_taler_exchange: false,
        contact: ContactData::default(),
        cashout_payto: None,
        address: x_taler_bank(username),
        debit_threshold: kudos("0"),
        min_cashout: None,
        tan_channels: Vec::new(),
        created_at: at(1_700_000_000),
        bonus: None,
    }
}

fn created(outcome: Result<CreateOutcome, StoreError>) -> Account {
    match outcome.unwrap() {
        CreateOutcome::Created(account) => account,
        other => panic!("expected Created, got {other:?}"),
    }
}

fn create(store: &dyn AccountStore, new: NewAccount) -> Account {
    created(store.create_account(new))
}

fn create_admin(store: &dyn AccountStore, debt_limit: &str) -> Account {
    let mut admin = new_account("admin");
    admin.debit_threshold = kudos(debt_limit);
    create(store, admin)
}

fn with_bonus(username: &str, bonus: &str) -> NewAccount {
    NewAccount {
        bonus: Some(kudos(bonus)),
        ..new_account(username)
    }
}

fn read(store: &dyn AccountStore, username: &str) -> Account {
    store.account(&user(username)).unwrap().unwrap()
}

fn balance(amount: &str, has_debt: bool) -> Balance {
    Balance {
        amount: kudos(amount),
        has_debt,
    }
}

fn names(accounts: &[Account]) -> Vec<&str> {
    accounts.iter().map(|a| a.username.as_str()).collect()
}

fn page(limit: i64, offset: i64) -> AccountPage {
    AccountPage {
        limit,
        offset,
        name_contains: None,
        public_only: false,
    }
}

/// Gives `username` a balance by paying it a bonus (the only transfer the port knows).
fn fund(store: &dyn AccountStore, username: &str, amount: &str) -> Account {
    create(store, with_bonus(username, amount))
}

fn token(hash_byte: u8, username: &str) -> TokenRecord {
    TokenRecord {
        token_hash: [hash_byte; 32],
        username: user(username),
        scope: Scope::Readwrite,
        refreshable: false,
        created_at: at(1_700_000_000),
        expires_at: at(1_700_003_600),
        description: None,
    }
}

// ---- creation ----

pub fn create_and_read_back_every_field(store: &dyn AccountStore) {
    let new = NewAccount {
        username: user("alice.B-1_~"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        name: "Alice Ünïcødé & Co 100%_".into(),
        is_public: true,
        is_taler_exchange: true,
        contact: ContactData {
            email: Some("alice@example.com".into()),
            phone: Some("+41791234567".into()),
        },
        cashout_payto: Some("payto://iban/CH9300762011623852957?receiver-name=Alice".into()),
        address: AddressChoice::Fixed(AccountAddress::Iban(iban(1))),
        debit_threshold: kudos("4503599627370496.99999999"),
        min_cashout: Some(kudos("0.00000001")),
        tan_channels: vec![TanChannel::Sms, TanChannel::Email],
        created_at: at(1_700_000_123),
        bonus: None,
    };
    let account = create(store, new.clone());
    let expected = Account {
        row_id: account.row_id,
        username: new.username.clone(),
        password_hash: new.password_hash,
        name: new.name,
        is_public: true,
        is_taler_exchange: true,
        contact: new.contact,
        cashout_payto: new.cashout_payto,
        address: AccountAddress::Iban(iban(1)),
        balance: balance("0", false),
        debit_threshold: new.debit_threshold,
        min_cashout: new.min_cashout,
        tan_channels: new.tan_channels,
        created_at: new.created_at,
        deleted_at: None,
    };
    assert_eq!(account, expected);
    assert_eq!(store.account(&new.username).unwrap(), Some(expected));
    assert_eq!(store.account(&user("nobody")).unwrap(), None);
    // Empty optional parts read back as empty, too.
    let plain = create(store, new_account("bob"));
    assert_eq!(read(store, "bob"), plain);
    assert!(plain.row_id > account.row_id);
}

pub fn username_taken_returns_that_account(store: &dyn AccountStore) {
    let alice = create(store, new_account("alice"));
    let mut again = new_account("alice");
    again.name = "Someone else".into();
    again.address = x_taler_bank("alice2");
    assert_eq!(
        store.create_account(again.clone()).unwrap(),
        CreateOutcome::UsernameTaken(alice)
    );
    // Usernames are case-sensitive.
    create(store, new_account("Alice"));
    // A soft-deleted username stays taken.
    store
        .delete_account(&user("alice"), at(1_800_000_000))
        .unwrap();
    let deleted = read(store, "alice");
    assert!(deleted.is_deleted());
    assert_eq!(
        store.create_account(again).unwrap(),
        CreateOutcome::UsernameTaken(deleted)
    );
    assert_eq!(store.account(&user("alice2")).unwrap(), None);
}

pub fn fixed_address_taken(store: &dyn AccountStore) {
    let mut first = new_account("first");
    first.address = AddressChoice::Fixed(AccountAddress::Iban(iban(7)));
    create(store, first);
    let mut same_iban = new_account("second");
    same_iban.address = AddressChoice::Fixed(AccountAddress::Iban(iban(7)));
    assert_eq!(
        store.create_account(same_iban).unwrap(),
        CreateOutcome::AddressTaken
    );
    create(store, new_account("first-x"));
    let mut taken = new_account("fourth");
    taken.address = x_taler_bank("first-x");
    assert_eq!(
        store.create_account(taken).unwrap(),
        CreateOutcome::AddressTaken
    );
    // The IBAN of a deleted account stays taken.
    store
        .delete_account(&user("first"), at(1_800_000_000))
        .unwrap();
    let mut reuse = new_account("fifth");
    reuse.address = AddressChoice::Fixed(AccountAddress::Iban(iban(7)));
    assert_eq!(
        store.create_account(reuse).unwrap(),
        CreateOutcome::AddressTaken
    );
    for refused in ["second", "fourth", "fifth"] {
        assert_eq!(store.account(&user(refused)).unwrap(), None, "{refused}");
    }
    // A free address is fine.
    let mut free = new_account("third");
    free.address = x_taler_bank("first");
    create(store, free);
}

pub fn iban_candidates_skip_used_and_historic_ibans(store: &dyn AccountStore) {
    let mut holder = new_account("holder");
    holder.address = AddressChoice::Fixed(AccountAddress::Iban(iban(1)));
    create(store, holder);
    let mut gone = new_account("gone");
    gone.address = AddressChoice::Fixed(AccountAddress::Iban(iban(2)));
    create(store, gone);
    store
        .delete_account(&user("gone"), at(1_800_000_000))
        .unwrap();
    let mut new = new_account("new");
    new.address = AddressChoice::IbanCandidates(vec![iban(1), iban(2), iban(3), iban(4)]);
    let account = create(store, new);
    assert_eq!(account.address, AccountAddress::Iban(iban(3)));
    assert_eq!(read(store, "new").address, AccountAddress::Iban(iban(3)));
    // The winner is now taken as well.
    let mut next = new_account("next");
    next.address = AddressChoice::IbanCandidates(vec![iban(3), iban(4)]);
    assert_eq!(create(store, next).address, AccountAddress::Iban(iban(4)));
}

pub fn all_candidates_taken(store: &dyn AccountStore) {
    let mut holder = new_account("holder");
    holder.address = AddressChoice::IbanCandidates(vec![iban(1)]);
    create(store, holder);
    let mut new = new_account("new");
    new.address = AddressChoice::IbanCandidates(vec![iban(1), iban(1)]);
    assert_eq!(
        store.create_account(new).unwrap(),
        CreateOutcome::AddressTaken
    );
    let mut none = new_account("none");
    none.address = AddressChoice::IbanCandidates(Vec::new());
    assert_eq!(
        store.create_account(none).unwrap(),
        CreateOutcome::AddressTaken
    );
    assert_eq!(store.account(&user("new")).unwrap(), None);
    assert_eq!(store.account(&user("none")).unwrap(), None);
}

// ---- bonus ----

pub fn bonus_moves_money_from_admin(store: &dyn AccountStore) {
    create_admin(store, "1000");
    let alice = fund(store, "alice", "100.5");
    assert_eq!(alice.balance, balance("100.5", false));
    assert_eq!(read(store, "alice").balance, balance("100.5", false));
    assert_eq!(read(store, "admin").balance, balance("100.5", true));
    fund(store, "bob", "0.5");
    assert_eq!(read(store, "admin").balance, balance("101", true));
    assert_eq!(read(store, "bob").balance, balance("0.5", false));
}

pub fn bonus_respects_the_admin_debt_limit_exactly(store: &dyn AccountStore) {
    create_admin(store, "10");
    fund(store, "alice", "6");
    // Reaching exactly -10 is allowed.
    fund(store, "bob", "4");
    assert_eq!(read(store, "admin").balance, balance("10", true));
    assert_eq!(
        store
            .create_account(with_bonus("carol", "0.00000001"))
            .unwrap(),
        CreateOutcome::BonusUnallowedDebit
    );
    assert_eq!(read(store, "admin").balance, balance("10", true));
    // Without a bonus there is nothing to refuse.
    create(store, new_account("carol"));
}

pub fn refused_bonus_creates_nothing_and_consumes_no_iban(store: &dyn AccountStore) {
    create_admin(store, "5");
    let mut greedy = with_bonus("greedy", "6");
    greedy.address = AddressChoice::IbanCandidates(vec![iban(1), iban(2)]);
    assert_eq!(
        store.create_account(greedy.clone()).unwrap(),
        CreateOutcome::BonusUnallowedDebit
    );
    assert_eq!(store.account(&user("greedy")).unwrap(), None);
    assert_eq!(read(store, "admin").balance, balance("0", false));
    let listed = store.list_accounts(&page(100, 0)).unwrap();
    assert_eq!(names(&listed), ["admin"]);
    // The IBAN that would have been assigned is still free.
    greedy.bonus = Some(kudos("5"));
    let account = create(store, greedy);
    assert_eq!(account.address, AccountAddress::Iban(iban(1)));
    assert_eq!(account.balance, balance("5", false));
}

pub fn bonus_without_admin_fails_and_creates_nothing(store: &dyn AccountStore) {
    let mut orphan = with_bonus("orphan", "1");
    orphan.address = AddressChoice::IbanCandidates(vec![iban(1)]);
    assert!(matches!(
        store.create_account(orphan),
        Err(StoreError::Internal(_))
    ));
    assert_eq!(store.account(&user("orphan")).unwrap(), None);
    let mut later = new_account("later");
    later.address = AddressChoice::IbanCandidates(vec![iban(1)]);
    assert_eq!(create(store, later).address, AccountAddress::Iban(iban(1)));
}

pub fn foreign_currency_amounts_are_refused(store: &dyn AccountStore) {
    let euro: Amount = "EUR:1".parse().unwrap();
    let mut new = new_account("alice");
    new.min_cashout = Some(euro.clone());
    assert!(matches!(
        store.create_account(new),
        Err(StoreError::Internal(_))
    ));
    assert_eq!(store.account(&user("alice")).unwrap(), None);
    let alice = create(store, new_account("alice"));
    let changes = AccountChanges {
        name: Some("Changed".into()),
        debit_threshold: Some(euro.clone()),
        ..AccountChanges::default()
    };
    assert!(matches!(
        store.update_account(&user("alice"), &changes),
        Err(StoreError::Internal(_))
    ));
    let changes = AccountChanges {
        min_cashout: Some(Some(euro)),
        ..AccountChanges::default()
    };
    assert!(store.update_account(&user("alice"), &changes).is_err());
    assert_eq!(read(store, "alice"), alice);
}

// ---- changes ----

pub fn update_is_field_wise(store: &dyn AccountStore) {
    let mut new = new_account("alice");
    new.contact = ContactData {
        email: Some("a@example.com".into()),
        phone: Some("+41790000000".into()),
    };
    new.cashout_payto = Some("payto://iban/CH9300762011623852957?receiver-name=A".into());
    new.min_cashout = Some(kudos("3"));
    new.tan_channels = vec![TanChannel::Email];
    let original = create(store, new);
    let user_alice = user("alice");

    assert!(
        store
            .update_account(&user_alice, &AccountChanges::default())
            .unwrap()
    );
    assert_eq!(read(store, "alice"), original);

    let changes = AccountChanges {
        name: Some("Alice B.".into()),
        phone: Some(None),
        debit_threshold: Some(kudos("50.25")),
        ..AccountChanges::default()
    };
    assert!(store.update_account(&user_alice, &changes).unwrap());
    let mut expected = original.clone();
    expected.name = "Alice B.".into();
    expected.contact.phone = None;
    expected.debit_threshold = kudos("50.25");
    assert_eq!(read(store, "alice"), expected);

    let changes = AccountChanges {
        is_public: Some(true),
        email: Some(Some("b@example.org".into())),
        cashout_payto: Some(None),
        min_cashout: Some(None),
        tan_channels: Some(vec![TanChannel::Sms, TanChannel::Email]),
        ..AccountChanges::default()
    };
    assert!(store.update_account(&user_alice, &changes).unwrap());
    expected.is_public = true;
    expected.contact.email = Some("b@example.org".into());
    expected.cashout_payto = None;
    expected.min_cashout = None;
    expected.tan_channels = vec![TanChannel::Sms, TanChannel::Email];
    assert_eq!(read(store, "alice"), expected);

    let changes = AccountChanges {
        phone: Some(Some("+41791111111".into())),
        min_cashout: Some(Some(kudos("0.1"))),
        tan_channels: Some(Vec::new()),
        ..AccountChanges::default()
    };
    assert!(store.update_account(&user_alice, &changes).unwrap());
    expected.contact.phone = Some("+41791111111".into());
    expected.min_cashout = Some(kudos("0.1"));
    expected.tan_channels = Vec::new();
    assert_eq!(read(store, "alice"), expected);

    assert!(store.set_password_hash(&user_alice, "new-hash").unwrap());
    expected.password_hash = "new-hash".into();
    assert_eq!(read(store, "alice"), expected);
}

pub fn deleted_or_missing_accounts_cannot_change(store: &dyn AccountStore) {
    create(store, new_account("alice"));
    store
        .delete_account(&user("alice"), at(1_800_000_000))
        .unwrap();
    let deleted = read(store, "alice");
    let changes = AccountChanges {
        name: Some("Ghost".into()),
        ..AccountChanges::default()
    };
    for username in ["alice", "nobody"] {
        let username = user(username);
        assert!(!store.update_account(&username, &changes).unwrap());
        assert!(
            !store
                .update_account(&username, &AccountChanges::default())
                .unwrap()
        );
        assert!(!store.set_password_hash(&username, "other").unwrap());
    }
    assert_eq!(read(store, "alice"), deleted);
    assert_eq!(store.account(&user("nobody")).unwrap(), None);
}

pub fn delete_outcomes(store: &dyn AccountStore) {
    create_admin(store, "100");
    fund(store, "rich", "1");
    create(store, new_account("plain"));
    let rich = user("rich");
    assert_eq!(
        store.delete_account(&rich, at(1_800_000_000)).unwrap(),
        DeleteOutcome::BalanceNotZero
    );
    // A debt is not a zero balance either.
    assert_eq!(
        store
            .delete_account(&user("admin"), at(1_800_000_000))
            .unwrap(),
        DeleteOutcome::BalanceNotZero
    );
    assert!(!read(store, "rich").is_deleted());
    assert_eq!(
        store
            .delete_account(&user("nobody"), at(1_800_000_000))
            .unwrap(),
        DeleteOutcome::NotFound
    );
    let plain = user("plain");
    assert_eq!(
        store.delete_account(&plain, at(1_800_000_000)).unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(read(store, "plain").deleted_at, Some(at(1_800_000_000)));
    assert_eq!(
        store.delete_account(&plain, at(1_900_000_000)).unwrap(),
        DeleteOutcome::NotFound
    );
    assert_eq!(read(store, "plain").deleted_at, Some(at(1_800_000_000)));
}

// ---- listings ----

/// Accounts a..f with row ids in creation order; returns their row ids.
fn six_accounts(store: &dyn AccountStore) -> Vec<i64> {
    ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|name| create(store, new_account(name)).row_id)
        .collect()
}

pub fn paging_forwards_and_backwards(store: &dyn AccountStore) {
    let ids = six_accounts(store);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let list = |limit, offset| store.list_accounts(&page(limit, offset)).unwrap();
    assert_eq!(names(&list(20, 0)), ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(names(&list(2, 0)), ["a", "b"]);
    assert_eq!(names(&list(2, ids[1])), ["c", "d"]);
    assert_eq!(names(&list(3, ids[4])), ["f"]);
    assert!(list(3, ids[5]).is_empty());
    assert_eq!(names(&list(-20, i64::MAX)), ["f", "e", "d", "c", "b", "a"]);
    assert_eq!(names(&list(-2, i64::MAX)), ["f", "e"]);
    assert_eq!(names(&list(-2, ids[4])), ["d", "c"]);
    assert_eq!(names(&list(-5, ids[1])), ["a"]);
    assert!(list(-5, ids[0]).is_empty());
    assert!(list(0, 0).is_empty());
    assert_eq!(list(i64::MAX, 0).len(), 6);
    assert_eq!(list(i64::MIN, i64::MAX).len(), 6);
    // Deleted accounts are listed, with their status.
    store.delete_account(&user("c"), at(1_800_000_000)).unwrap();
    let all = list(20, 0);
    assert_eq!(all.len(), 6);
    assert!(all[2].is_deleted());
    assert_eq!(all[0], read(store, "a"));
}

pub fn name_filter_is_literal_and_case_sensitive(store: &dyn AccountStore) {
    for (username, name) in [
        ("u1", "Anna Meier"),
        ("u2", "anna meier"),
        ("u3", "100% Anna"),
        ("u4", "Anna_Meier"),
        ("u5", "Bob"),
    ] {
        let mut new = new_account(username);
        new.name = name.into();
        create(store, new);
    }
    let filtered = |part: &str, limit: i64| {
        let page = AccountPage {
            name_contains: Some(part.into()),
            ..page(limit, if limit > 0 { 0 } else { i64::MAX })
        };
        names(&store.list_accounts(&page).unwrap())
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(filtered("Anna", 20), ["u1", "u3", "u4"]);
    assert_eq!(filtered("anna", 20), ["u2"]);
    assert_eq!(filtered("%", 20), ["u3"]);
    assert_eq!(filtered("_", 20), ["u4"]);
    assert_eq!(filtered("A%a", 20), Vec::<String>::new());
    assert_eq!(filtered("Anna", -2), ["u4", "u3"]);
    assert_eq!(filtered("Anna", 1), ["u1"]);
    assert_eq!(filtered("", 20).len(), 5);
    assert!(filtered("Carol", 20).is_empty());
}

pub fn public_only_hides_private_and_deleted(store: &dyn AccountStore) {
    for (username, public) in [("a", true), ("b", false), ("c", true), ("d", true)] {
        let mut new = new_account(username);
        new.is_public = public;
        new.name = format!("Shop {username}");
        create(store, new);
    }
    store.delete_account(&user("c"), at(1_800_000_000)).unwrap();
    let public = |limit: i64, offset: i64, part: Option<&str>| {
        let page = AccountPage {
            name_contains: part.map(str::to_owned),
            public_only: true,
            ..page(limit, offset)
        };
        names(&store.list_accounts(&page).unwrap())
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(public(20, 0, None), ["a", "d"]);
    assert_eq!(public(-20, i64::MAX, None), ["d", "a"]);
    assert_eq!(public(1, 0, None), ["a"]);
    assert_eq!(public(-1, i64::MAX, None), ["d"]);
    assert_eq!(public(20, 0, Some("Shop d")), ["d"]);
    assert!(public(20, 0, Some("Shop b")).is_empty());
    // Becoming private hides an account as well.
    let private = AccountChanges {
        is_public: Some(false),
        ..AccountChanges::default()
    };
    store.update_account(&user("a"), &private).unwrap();
    assert_eq!(public(20, 0, None), ["d"]);
}

// ---- tokens ----

pub fn tokens_insert_read_delete(store: &dyn AccountStore) {
    create(store, new_account("alice"));
    let finite = token(1, "alice");
    let never = TokenRecord {
        token_hash: [2; 32],
        scope: Scope::Readonly,
        refreshable: true,
        expires_at: Timestamp::never(),
        description: Some("for the shop ✓".into()),
        ..token(0, "alice")
    };
    let far = TokenRecord {
        token_hash: [3; 32],
        scope: Scope::Observability,
        expires_at: Timestamp::from_seconds(9_000_000_000_000).unwrap(),
        ..token(0, "alice")
    };
    for record in [&finite, &never, &far] {
        assert!(store.insert_token(record).unwrap());
        assert_eq!(
            store.token(&record.token_hash).unwrap().as_ref(),
            Some(record)
        );
    }
    assert_eq!(store.token(&[9; 32]).unwrap(), None);
    assert!(store.delete_token(&finite.token_hash).unwrap());
    assert!(!store.delete_token(&finite.token_hash).unwrap());
    assert_eq!(store.token(&finite.token_hash).unwrap(), None);
    assert_eq!(store.token(&never.token_hash).unwrap(), Some(never));
}

pub fn tokens_follow_their_account(store: &dyn AccountStore) {
    create(store, new_account("alice"));
    create(store, new_account("bob"));
    assert!(store.insert_token(&token(1, "alice")).unwrap());
    assert!(store.insert_token(&token(2, "bob")).unwrap());
    assert!(!store.insert_token(&token(3, "nobody")).unwrap());
    assert_eq!(store.token(&[3; 32]).unwrap(), None);
    store
        .delete_account(&user("alice"), at(1_800_000_000))
        .unwrap();
    assert_eq!(store.token(&[1; 32]).unwrap(), None);
    assert!(!store.insert_token(&token(4, "alice")).unwrap());
    assert_eq!(store.token(&[4; 32]).unwrap(), None);
    assert_eq!(store.token(&[2; 32]).unwrap(), Some(token(2, "bob")));
}

// ---- concurrency ----

pub fn concurrent_creates_of_one_username(store: &dyn AccountStore) {
    create_admin(store, "1000");
    const ATTEMPTS: u64 = 8;
    let outcomes: Vec<CreateOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..ATTEMPTS)
            .map(|i| {
                scope.spawn(move || {
                    let mut new = with_bonus("carol", "10");
                    new.address = AddressChoice::IbanCandidates(vec![iban(100 + i)]);
                    store.create_account(new).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<&Account> = outcomes
        .iter()
        .filter_map(|o| match o {
            CreateOutcome::Created(account) => Some(account),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let carol = read(store, "carol");
    assert_eq!(&carol, winners[0]);
    for outcome in &outcomes {
        match outcome {
            CreateOutcome::Created(_) => {}
            CreateOutcome::UsernameTaken(existing) => assert_eq!(existing, &carol),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(read(store, "admin").balance, balance("10", true));
    assert_eq!(carol.balance, balance("10", false));
    // Only the winner's IBAN is consumed: every other candidate is still free.
    let AccountAddress::Iban(used) = &carol.address else {
        panic!("carol has no IBAN");
    };
    for (n, candidate) in (100..100 + ATTEMPTS).map(iban).enumerate() {
        if &candidate != used {
            let mut other = new_account(&format!("other{n}"));
            other.address = AddressChoice::IbanCandidates(vec![candidate.clone()]);
            assert_eq!(
                create(store, other).address,
                AccountAddress::Iban(candidate)
            );
        }
    }
}

/// Registrations of different users, each with a bonus, at once: every bonus is debited from
/// `admin` (none is lost by two creations reading the same balance) and booked to its user.
pub fn concurrent_bonuses_are_all_debited(store: &dyn AccountStore) {
    create_admin(store, "1000");
    const USERS: u64 = 8;
    let accounts: Vec<Account> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..USERS)
            .map(|i| {
                scope.spawn(move || {
                    let mut new = with_bonus(&format!("user{i}"), "2.5");
                    new.address = AddressChoice::IbanCandidates(vec![iban(200 + i)]);
                    created(store.create_account(new))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(read(store, "admin").balance, balance("20", true));
    let mut rows: Vec<i64> = accounts.iter().map(|a| a.row_id).collect();
    rows.sort_unstable();
    rows.dedup();
    assert_eq!(rows.len(), accounts.len(), "row ids must be distinct");
    for account in &accounts {
        assert_eq!(account.balance, balance("2.5", false));
        assert_eq!(&read(store, account.username.as_str()), account);
    }
    let listed = store.list_accounts(&page(100, 0)).unwrap();
    assert_eq!(listed.len(), 1 + accounts.len());
}
