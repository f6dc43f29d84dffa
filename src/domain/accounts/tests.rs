//! The account rules over in-memory ports (corebank spec §4–§10).

use std::sync::Arc;

use serde_json::json;

use super::api::*;
use super::*;
use crate::domain::primitives::{Amount, Timestamp};
use crate::ports::accounts::{AccountStore, InMemoryAccountStore};
use crate::ports::clock::FakeClock;
use crate::ports::password::InsecureTestHasher;
use crate::ports::random::SeededRandom;

struct Bank {
    service: AccountService,
    store: Arc<InMemoryAccountStore>,
    clock: Arc<FakeClock>,
}

fn kudos(text: &str) -> Amount {
    text.parse().unwrap()
}

fn settings() -> BankSettings {
    BankSettings {
        currency: "KUDOS".parse().unwrap(),
        wire_type: WireType::XTalerBank,
        payto: PaytoContext {
            bic: None,
            x_taler_bank_hostname: "localhost".into(),
        },
        default_debt_limit: kudos("KUDOS:0"),
        registration_bonus: None,
        allow_registration: true,
        allow_deletion: false,
        allow_edit_name: false,
        allow_edit_cashout: false,
        tan_channels: Vec::new(),
    }
}

fn bank_with(adjust: impl FnOnce(&mut BankSettings)) -> Bank {
    bank_over(InMemoryAccountStore::default(), adjust)
}

fn bank_over(store: InMemoryAccountStore, adjust: impl FnOnce(&mut BankSettings)) -> Bank {
    let mut settings = settings();
    adjust(&mut settings);
    let store = Arc::new(store);
    let clock = Arc::new(FakeClock::at(
        Timestamp::from_seconds(1_700_000_000).unwrap(),
    ));
    let service = AccountService::new(
        Arc::clone(&store) as Arc<dyn AccountStore>,
        Arc::new(InsecureTestHasher::default()),
        Arc::clone(&clock) as Arc<dyn crate::ports::clock::Clock>,
        Arc::new(SeededRandom::new(7)),
        settings,
    )
    .unwrap();
    service.ensure_admin().unwrap();
    service.set_password("admin", "admin-password").unwrap();
    Bank {
        service,
        store,
        clock,
    }
}

fn bank() -> Bank {
    bank_with(|_| {})
}

fn request(value: serde_json::Value) -> RegisterAccountRequest {
    serde_json::from_value(value).unwrap()
}

fn alice() -> serde_json::Value {
    json!({"username": "alice", "password": "alice-password", "name": "Alice Doe"})
}

fn with(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    for (key, value) in extra.as_object().unwrap() {
        base[key] = value.clone();
    }
    base
}

fn caller(name: &str) -> Caller {
    Caller {
        username: Username::parse(name).unwrap(),
        access: Access::Password,
    }
}

fn code(result: Result<impl std::fmt::Debug, crate::domain::primitives::TalerError>) -> u32 {
    result.unwrap_err().code.number()
}

fn basic(login: &str, password: &str) -> String {
    format!(
        "Basic {}",
        data_encoding::BASE64.encode(format!("{login}:{password}").as_bytes())
    )
}

impl Bank {
    fn register(
        &self,
        body: serde_json::Value,
    ) -> Result<RegisterAccountResponse, crate::domain::primitives::TalerError> {
        self.service.register(None, request(body))
    }

    fn register_as_admin(
        &self,
        body: serde_json::Value,
    ) -> Result<RegisterAccountResponse, crate::domain::primitives::TalerError> {
        self.service.register(Some(&caller("admin")), request(body))
    }

    fn account(&self, name: &str) -> Account {
        self.store
            .account(&Username::parse(name).unwrap())
            .unwrap()
            .unwrap()
    }
}

#[test]
fn registration_answers_the_bank_form_payto() {
    let bank = bank_with(|s| s.payto.x_taler_bank_hostname = "bank.example.com".into());
    let response = bank.register(alice()).unwrap();
    assert_eq!(
        response.internal_payto_uri,
        "payto://x-taler-bank/bank.example.com/alice?receiver-name=Alice%20Doe"
    );
    let stored = bank.account("alice");
    assert_eq!(
        stored.address.canonical(),
        "payto://x-taler-bank/localhost/alice"
    );
    assert_eq!(stored.debit_threshold, kudos("KUDOS:0"));
}

#[test]
fn validators_answer_400_22() {
    let bank = bank();
    for bad in [
        json!({"username": "a b"}),
        json!({"contact_data": {"email": "not-an-email"}}),
        json!({"contact_data": {"phone": "12 34"}}),
        json!({"cashout_payto_uri": "payto://x-taler-bank/localhost/alice"}),
        json!({"payto_uri": "payto://iban/DE00"}),
    ] {
        assert_eq!(code(bank.register(with(alice(), bad.clone()))), 22, "{bad}");
    }
}

#[test]
fn amounts_get_the_bank_codes() {
    let bank = bank();
    assert_eq!(
        code(bank.register_as_admin(with(alice(), json!({"debit_threshold": "KUDOS:1."})))),
        5108
    );
    assert_eq!(
        code(bank.register_as_admin(with(
            alice(),
            json!({"debit_threshold": "KUDOS:4503599627370497"})
        ))),
        5104
    );
    assert_eq!(
        code(bank.register_as_admin(with(alice(), json!({"debit_threshold": "EUR:1"})))),
        30
    );
}

#[test]
fn reserved_usernames_are_409_5120() {
    let bank = bank();
    for name in ["admin", "bank"] {
        assert_eq!(
            code(bank.register(with(alice(), json!({"username": name})))),
            5120
        );
    }
}

#[test]
fn admin_only_fields_are_refused_to_others() {
    let bank = bank();
    let cases = [
        (json!({"debit_threshold": "KUDOS:10"}), 5136),
        (json!({"min_cashout": "KUDOS:1"}), 5146),
        (json!({"conversion_rate_class_id": 1}), 9999),
        (json!({"tan_channel": "sms"}), 5145),
        (json!({"tan_channels": ["email"]}), 5145),
    ];
    for (extra, expected) in cases {
        assert_eq!(
            code(bank.register(with(alice(), extra.clone()))),
            expected,
            "{extra}"
        );
    }
    // An empty channel list is no 2FA at all, which anyone may ask for.
    bank.register(with(alice(), json!({"tan_channels": []})))
        .unwrap();
}

#[test]
fn admin_tan_channels_must_be_configured_and_addressed() {
    let unconfigured = bank();
    let sms = with(
        alice(),
        json!({"tan_channel": "sms", "contact_data": {"phone": "+41791234567"}}),
    );
    assert_eq!(code(unconfigured.register_as_admin(sms.clone())), 5132);
    let configured = bank_with(|s| s.tan_channels = vec![TanChannel::Sms]);
    assert_eq!(
        code(configured.register_as_admin(with(alice(), json!({"tan_channel": "sms"})))),
        5129
    );
    configured.register_as_admin(sms).unwrap();
    assert_eq!(
        configured.account("alice").tan_channels,
        vec![TanChannel::Sms]
    );
    assert_eq!(
        code(configured.register_as_admin(with(alice(), json!({"conversion_rate_class_id": 1})))),
        9999
    );
}

#[test]
fn password_length_limits() {
    let bank = bank();
    assert_eq!(
        code(bank.register(with(alice(), json!({"password": "1234567"})))),
        5150
    );
    assert_eq!(
        code(bank.register(with(alice(), json!({"password": "x".repeat(65)})))),
        5151
    );
    // Characters, not bytes: 8 two-byte characters are enough.
    bank.register(with(alice(), json!({"password": "éééééééé"})))
        .unwrap();
}

#[test]
fn the_exchange_username_is_for_exchanges() {
    let bank = bank();
    let exchange = json!({"username": "exchange", "password": "exchange-pw", "name": "Exchange"});
    assert_eq!(code(bank.register(exchange.clone())), 9999);
    bank.register(with(exchange, json!({"is_taler_exchange": true})))
        .unwrap();
}

#[test]
fn identical_replays_succeed_and_differences_conflict() {
    let bank = bank_with(|s| s.registration_bonus = Some(kudos("KUDOS:5")));
    bank.service
        .reconfigure(
            &caller("admin"),
            "admin",
            serde_json::from_value(json!({"debit_threshold": "KUDOS:100"})).unwrap(),
        )
        .unwrap();
    let first = bank.register(alice()).unwrap();
    assert_eq!(bank.register(alice()).unwrap(), first);
    assert_eq!(
        bank.store.ledger().len(),
        1,
        "a replay pays no second bonus"
    );
    for different in [
        json!({"password": "other-password"}),
        json!({"name": "Alice Other"}),
        json!({"is_public": true}),
        json!({"contact_data": {"email": "a@example.com"}}),
    ] {
        assert_eq!(
            code(bank.register(with(alice(), different.clone()))),
            5121,
            "{different}"
        );
    }
}

#[test]
fn deleted_usernames_are_never_revived() {
    let bank = bank_with(|s| s.allow_deletion = true);
    bank.register(alice()).unwrap();
    bank.service.delete(&caller("alice"), "alice").unwrap();
    assert_eq!(code(bank.register(alice())), 5121);
}

#[test]
fn the_bonus_is_paid_by_admin_within_its_debt_limit() {
    let bank = bank_with(|s| {
        s.registration_bonus = Some(kudos("KUDOS:10"));
        s.default_debt_limit = kudos("KUDOS:15");
    });
    bank.register(alice()).unwrap();
    assert_eq!(
        bank.account("alice").balance,
        Balance {
            amount: kudos("KUDOS:10"),
            has_debt: false
        }
    );
    assert_eq!(
        bank.account("admin").balance,
        Balance {
            amount: kudos("KUDOS:10"),
            has_debt: true
        }
    );
    let bob = json!({"username": "bob", "password": "bob-password", "name": "Bob"});
    assert_eq!(code(bank.register(bob.clone())), 5102);
    assert!(
        bank.store
            .account(&Username::parse("bob").unwrap())
            .unwrap()
            .is_none()
    );
    // Exchanges get no bonus, so they can still register.
    bank.register(with(bob, json!({"is_taler_exchange": true})))
        .unwrap();
    assert_eq!(bank.account("bob").balance.amount, kudos("KUDOS:0"));
}

#[test]
fn iban_accounts_get_fresh_ibans_or_their_own() {
    let bank = bank_with(|s| {
        s.wire_type = WireType::Iban;
        s.payto.bic = Some("SANDBOXX".into());
    });
    let generated = bank.register(alice()).unwrap().internal_payto_uri;
    assert!(
        generated.starts_with("payto://iban/SANDBOXX/DE"),
        "{generated}"
    );
    let own = json!({"username": "bob", "password": "bob-password", "name": "Bob",
        "payto_uri": "payto://iban/DE89370400440532013000?receiver-name=Whoever"});
    assert_eq!(
        bank.register(own).unwrap().internal_payto_uri,
        "payto://iban/SANDBOXX/DE89370400440532013000?receiver-name=Bob"
    );
    let reuse = json!({"username": "carol", "password": "carol-password", "name": "Carol",
        "payto_uri": "payto://iban/DE89370400440532013000"});
    assert_eq!(code(bank.register(reuse)), 5122);
    let wrong_kind = json!({"username": "dave", "password": "dave-password", "name": "Dave",
        "payto_uri": "payto://x-taler-bank/localhost/dave"});
    assert_eq!(code(bank.register(wrong_kind)), 22);
}

#[test]
fn registration_closed_needs_admin() {
    let bank = bank_with(|s| s.allow_registration = false);
    assert_eq!(code(bank.service.registration_caller(None)), 25);
    bank.register(alice()).unwrap();
    let alice_login = basic("alice", "alice-password");
    assert_eq!(
        code(bank.service.registration_caller(Some(&alice_login))),
        44
    );
    let admin = bank
        .service
        .registration_caller(Some(&basic("admin", "admin-password")))
        .unwrap();
    assert!(admin.is_some_and(|c| c.is_admin()));
}

#[test]
fn open_registration_ignores_failed_logins() {
    let bank = bank();
    assert_eq!(
        bank.service.registration_caller(Some("garbage")).unwrap(),
        None
    );
    assert_eq!(
        bank.service
            .registration_caller(Some(&basic("admin", "wrong")))
            .unwrap(),
        None
    );
}

#[test]
fn authentication_outcomes() {
    let bank = bank();
    bank.register(alice()).unwrap();
    let ok = bank
        .service
        .authenticate(Some(&basic("alice", "alice-password")))
        .unwrap()
        .unwrap();
    assert_eq!(ok.username.as_str(), "alice");
    assert_eq!(
        code(bank.service.authenticate(Some(&basic("alice", "wrong")))),
        40
    );
    assert_eq!(
        code(bank.service.authenticate(Some(&basic("nobody", "x")))),
        40
    );
    assert_eq!(code(bank.service.authenticate(Some("WTF"))), 23);
    assert_eq!(code(bank.service.require_caller(None)), 25);
}

fn token(bank: &Bank, who: &Caller, body: serde_json::Value) -> String {
    let response = bank
        .service
        .create_token(
            who,
            who.username.as_str(),
            serde_json::from_value(body).unwrap(),
        )
        .unwrap();
    format!("Bearer {}", response.access_token)
}

#[test]
fn tokens_carry_scopes_and_expire() {
    let bank = bank();
    bank.register(alice()).unwrap();
    let readonly = token(
        &bank,
        &caller("alice"),
        json!({"scope": "readonly", "duration": {"d_us": 60_000_000u64}}),
    );
    let reader = bank.service.authenticate(Some(&readonly)).unwrap().unwrap();
    bank.service.account_data(&reader, "alice").unwrap();
    let patch: AccountReconfiguration = serde_json::from_value(json!({"is_public": true})).unwrap();
    assert_eq!(code(bank.service.reconfigure(&reader, "alice", patch)), 16);
    bank.clock
        .advance(crate::domain::primitives::RelativeTime::from_seconds(61));
    assert_eq!(code(bank.service.authenticate(Some(&readonly))), 40);
}

#[test]
fn token_minting_rules() {
    let bank = bank();
    bank.register(alice()).unwrap();
    bank.register(json!({"username": "bob", "password": "bob-password", "name": "Bob"}))
        .unwrap();
    let mint = |who: &Caller, user: &str, body: serde_json::Value| {
        bank.service
            .create_token(who, user, serde_json::from_value(body).unwrap())
    };
    // Admin cannot mint for others.
    assert_eq!(
        code(mint(
            &caller("admin"),
            "alice",
            json!({"scope": "readonly"})
        )),
        44
    );
    let plain = token(&bank, &caller("alice"), json!({"scope": "readwrite"}));
    let plain = bank.service.authenticate(Some(&plain)).unwrap().unwrap();
    assert_eq!(
        code(mint(&plain, "alice", json!({"scope": "readonly"}))),
        16
    );
    let refreshable_ro = token(
        &bank,
        &caller("alice"),
        json!({"scope": "readonly", "refreshable": true}),
    );
    let refreshable_ro = bank
        .service
        .authenticate(Some(&refreshable_ro))
        .unwrap()
        .unwrap();
    assert_eq!(
        code(mint(
            &refreshable_ro,
            "alice",
            json!({"scope": "readwrite"})
        )),
        16
    );
    mint(&refreshable_ro, "alice", json!({"scope": "readonly"})).unwrap();
    let forever = mint(
        &caller("alice"),
        "alice",
        json!({"scope": "readonly", "duration": {"d_us": "forever"}}),
    )
    .unwrap();
    assert!(forever.expiration.is_never());
    let default = mint(&caller("alice"), "alice", json!({"scope": "readonly"})).unwrap();
    assert_eq!(
        default.expiration.as_seconds(),
        Some(1_700_000_000 + 86_400)
    );
}

#[test]
fn deleting_a_token_needs_the_token() {
    let bank = bank();
    bank.register(alice()).unwrap();
    let header = token(&bank, &caller("alice"), json!({"scope": "readonly"}));
    let who = bank.service.authenticate(Some(&header)).unwrap().unwrap();
    assert_eq!(
        code(bank.service.delete_token(&caller("alice"), "alice")),
        22
    );
    bank.service.delete_token(&who, "alice").unwrap();
    assert_eq!(code(bank.service.authenticate(Some(&header))), 40);
}

#[test]
fn tokens_outlive_password_changes() {
    let bank = bank();
    bank.register(alice()).unwrap();
    let header = token(&bank, &caller("alice"), json!({"scope": "readwrite"}));
    let change: AccountPasswordChange = serde_json::from_value(
        json!({"old_password": "alice-password", "new_password": "new-password"}),
    )
    .unwrap();
    bank.service
        .change_password(&caller("alice"), "alice", change)
        .unwrap();
    assert!(bank.service.authenticate(Some(&header)).is_ok());
    assert_eq!(
        code(
            bank.service
                .authenticate(Some(&basic("alice", "alice-password")))
        ),
        40
    );
    bank.service
        .authenticate(Some(&basic("alice", "new-password")))
        .unwrap();
}

#[test]
fn reading_accounts() {
    let bank = bank();
    bank.register(with(
        alice(),
        json!({"contact_data": {"email": "alice@example.com"}}),
    ))
    .unwrap();
    bank.register(json!({"username": "bob", "password": "bob-password", "name": "Bob"}))
        .unwrap();
    let data = bank
        .service
        .account_data(&caller("alice"), "alice")
        .unwrap();
    assert_eq!(
        serde_json::to_value(&data).unwrap(),
        json!({
            "name": "Alice Doe",
            "balance": {"amount": "KUDOS:0", "credit_debit_indicator": "credit"},
            "payto_uri": "payto://x-taler-bank/localhost/alice?receiver-name=Alice%20Doe",
            "debit_threshold": "KUDOS:0",
            "contact_data": {"email": "alice@example.com"},
            "is_public": false,
            "is_taler_exchange": false,
            "status": "active",
        })
    );
    assert_eq!(code(bank.service.account_data(&caller("bob"), "alice")), 44);
    bank.service
        .account_data(&caller("admin"), "alice")
        .unwrap();
    assert_eq!(
        code(bank.service.account_data(&caller("admin"), "nobody")),
        5106
    );
}

fn patch(
    bank: &Bank,
    who: &str,
    user: &str,
    body: serde_json::Value,
) -> Result<(), crate::domain::primitives::TalerError> {
    bank.service
        .reconfigure(&caller(who), user, serde_json::from_value(body).unwrap())
}

#[test]
fn reconfiguration_rules_for_owners() {
    let bank = bank();
    bank.register(with(
        alice(),
        json!({"cashout_payto_uri": "payto://iban/DE89370400440532013000"}),
    ))
    .unwrap();
    assert_eq!(
        code(patch(&bank, "alice", "alice", json!({"name": "New Name"}))),
        5135
    );
    patch(&bank, "alice", "alice", json!({"name": "Alice Doe"})).unwrap();
    assert_eq!(
        code(patch(
            &bank,
            "alice",
            "alice",
            json!({"cashout_payto_uri": "payto://iban/CH9300762011623852957"})
        )),
        5140
    );
    assert_eq!(
        code(patch(
            &bank,
            "alice",
            "alice",
            json!({"debit_threshold": "KUDOS:1"})
        )),
        5136
    );
    patch(
        &bank,
        "alice",
        "alice",
        json!({"debit_threshold": "KUDOS:0"}),
    )
    .unwrap();
    assert_eq!(
        code(patch(
            &bank,
            "alice",
            "alice",
            json!({"min_cashout": "KUDOS:1"})
        )),
        5146
    );
    assert_eq!(
        code(patch(
            &bank,
            "alice",
            "alice",
            json!({"debit_threshold": "EUR:1"})
        )),
        30
    );
    assert_eq!(
        code(patch(
            &bank,
            "alice",
            "alice",
            json!({"tan_channel": "sms"})
        )),
        5132
    );
    patch(
        &bank,
        "alice",
        "alice",
        json!({"is_public": true, "contact_data": {"phone": "+41791234567"}}),
    )
    .unwrap();
    let stored = bank.account("alice");
    assert!(stored.is_public);
    assert_eq!(stored.contact.phone.as_deref(), Some("+41791234567"));
    patch(
        &bank,
        "alice",
        "alice",
        json!({"contact_data": {"phone": null}}),
    )
    .unwrap();
    assert_eq!(bank.account("alice").contact.phone, None);
    // Admin may change what owners may not.
    patch(
        &bank,
        "admin",
        "alice",
        json!({"name": "Renamed", "debit_threshold": "KUDOS:50"}),
    )
    .unwrap();
    let stored = bank.account("alice");
    assert_eq!(
        (stored.name.as_str(), &stored.debit_threshold),
        ("Renamed", &kudos("KUDOS:50"))
    );
    assert_eq!(
        code(patch(&bank, "admin", "admin", json!({"is_public": true}))),
        9999
    );
    assert_eq!(code(patch(&bank, "admin", "nobody", json!({}))), 5106);
}

#[test]
fn reconfiguration_allowed_by_options_and_tan_addresses() {
    let bank = bank_with(|s| {
        s.allow_edit_name = true;
        s.allow_edit_cashout = true;
        s.tan_channels = vec![TanChannel::Email];
    });
    bank.register(alice()).unwrap();
    patch(
        &bank,
        "alice",
        "alice",
        json!({"name": "New Name", "cashout_payto_uri": "payto://iban/DE89370400440532013000"}),
    )
    .unwrap();
    assert_eq!(
        bank.account("alice").cashout_payto.as_deref(),
        Some("payto://iban/DE89370400440532013000?receiver-name=New%20Name")
    );
    assert_eq!(
        code(patch(
            &bank,
            "alice",
            "alice",
            json!({"tan_channel": "email"})
        )),
        5129
    );
    patch(
        &bank,
        "alice",
        "alice",
        json!({"tan_channel": "email", "contact_data": {"email": "a@example.com"}}),
    )
    .unwrap();
    assert_eq!(
        code(patch(
            &bank,
            "alice",
            "alice",
            json!({"contact_data": {"email": null}})
        )),
        5129
    );
    patch(&bank, "alice", "alice", json!({"tan_channels": null})).unwrap();
    assert!(bank.account("alice").tan_channels.is_empty());
}

#[test]
fn password_changes() {
    let bank = bank();
    bank.register(alice()).unwrap();
    let change = |who: &str, body: serde_json::Value| {
        bank.service
            .change_password(&caller(who), "alice", serde_json::from_value(body).unwrap())
    };
    assert_eq!(
        code(change("alice", json!({"new_password": "new-password"}))),
        5137
    );
    assert_eq!(
        code(change(
            "alice",
            json!({"old_password": "alice-password", "new_password": "short"})
        )),
        5150
    );
    assert_eq!(
        code(change(
            "alice",
            json!({"old_password": "wrong-password", "new_password": "new-password"})
        )),
        5138
    );
    change("admin", json!({"new_password": "admin-set-pw"})).unwrap();
    assert_eq!(
        code(change(
            "admin",
            json!({"old_password": "wrong-password", "new_password": "new-password"})
        )),
        5138
    );
    assert_eq!(
        code(bank.service.change_password(
            &caller("admin"),
            "nobody",
            serde_json::from_value(json!({"new_password": "new-password"})).unwrap()
        )),
        5106
    );
}

#[test]
fn deletion_rules() {
    let closed = bank();
    closed.register(alice()).unwrap();
    assert_eq!(code(closed.service.delete(&caller("alice"), "alice")), 44);
    closed.service.delete(&caller("admin"), "alice").unwrap();
    assert_eq!(code(closed.service.delete(&caller("admin"), "alice")), 5106);
    assert_eq!(code(closed.service.delete(&caller("admin"), "admin")), 5120);
    assert_eq!(code(closed.service.delete(&caller("admin"), "bank")), 5120);

    let open = bank_with(|s| {
        s.allow_deletion = true;
        s.registration_bonus = Some(kudos("KUDOS:1"));
        s.default_debt_limit = kudos("KUDOS:10");
    });
    open.register(alice()).unwrap();
    assert_eq!(code(open.service.delete(&caller("alice"), "alice")), 5123);
    open.register(json!({"username": "ex", "password": "exchange-pw", "name": "Ex", "is_taler_exchange": true})).unwrap();
    open.service.delete(&caller("ex"), "ex").unwrap();
    let deleted = open.service.account_data(&caller("admin"), "ex").unwrap();
    assert_eq!(deleted.status, "deleted");
    assert_eq!(
        code(open.service.authenticate(Some(&basic("ex", "exchange-pw")))),
        40
    );
}

#[test]
fn listings_page_and_filter() {
    let bank = bank();
    for (user, name, public) in [
        ("a1", "Ann One", true),
        ("b2", "Bob Two", false),
        ("c3", "Cat Three", true),
    ] {
        bank.register(
            json!({"username": user, "password": "password1", "name": name, "is_public": public}),
        )
        .unwrap();
    }
    let page = |q: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> =
            q.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        page_from_query(&pairs, false).unwrap()
    };
    let all = bank
        .service
        .list_accounts(&caller("admin"), &page(&[]))
        .unwrap()
        .unwrap();
    let names: Vec<_> = all.accounts.iter().map(|a| a.username.as_str()).collect();
    assert_eq!(names, ["c3", "b2", "a1", "admin"]);
    let forwards = bank
        .service
        .list_accounts(&caller("admin"), &page(&[("limit", "2"), ("offset", "1")]))
        .unwrap()
        .unwrap();
    let names: Vec<_> = forwards
        .accounts
        .iter()
        .map(|a| a.username.as_str())
        .collect();
    assert_eq!(names, ["a1", "b2"]);
    let filtered = bank
        .service
        .list_accounts(&caller("admin"), &page(&[("filter_name", "T")]))
        .unwrap()
        .unwrap();
    assert_eq!(filtered.accounts.len(), 2);
    assert!(
        bank.service
            .list_accounts(&caller("admin"), &page(&[("filter_name", "t")]))
            .unwrap()
            .unwrap()
            .accounts
            .iter()
            .all(|a| a.name.contains('t'))
    );
    assert_eq!(
        code(bank.service.list_accounts(&caller("a1"), &page(&[]))),
        44
    );
    let public = bank
        .service
        .list_public_accounts(&page(&[]))
        .unwrap()
        .unwrap();
    let names: Vec<_> = public
        .public_accounts
        .iter()
        .map(|a| a.username.as_str())
        .collect();
    assert_eq!(names, ["c3", "a1"]);
    assert!(
        bank.service
            .list_public_accounts(&page(&[("filter_name", "nobody")]))
            .unwrap()
            .is_none()
    );
}

/// The 2FA round over in-memory ports: a gated PATCH answers a challenge, its replay after
/// confirmation changes the account and consumes the challenge in one step, and a second
/// replay of the used challenge changes nothing.
#[test]
fn gated_changes_commit_with_their_challenge_in_memory() {
    use crate::domain::tan::{
        BodyKey, CanonicalBody, ChallengeId, TanRequest, TanSenders, TanService, TanSettings,
    };
    use crate::ports::sender::RecordingSender;
    use crate::ports::tan::InMemoryTanStore;

    let challenges = Arc::new(InMemoryTanStore::default());
    let bank = bank_over(
        InMemoryAccountStore::with_challenges(challenges.clone()),
        |s| {
            s.tan_channels = vec![TanChannel::Sms];
        },
    );
    bank.register_as_admin(with(
        alice(),
        json!({"tan_channel": "sms", "contact_data": {"phone": "+41791234567"}}),
    ))
    .unwrap();
    let sms = Arc::new(RecordingSender::default());
    let tan = TanService::new(
        challenges,
        TanSenders {
            sms: Some(sms.clone()),
            email: None,
        },
        Arc::clone(&bank.clock) as _,
        Arc::new(SeededRandom::new(9)),
        BodyKey::new([1; 32]),
        TanSettings::default(),
        "Taler Bank".into(),
    );
    let body = json!({"is_public": true});
    let patch = |presented: Vec<ChallengeId>| {
        let request = TanRequest {
            service: &tan,
            presented,
            body: CanonicalBody::of_json(&body),
        };
        let patch = serde_json::from_value(body.clone()).unwrap();
        bank.service
            .reconfigure_gated(&caller("alice"), "alice", patch, Some(&request))
    };
    let challenge = patch(Vec::new()).unwrap().expect("a 202 challenge");
    let id = challenge.challenges[0].challenge_id.clone();
    assert!(
        !bank.account("alice").is_public,
        "nothing changes before the code"
    );
    let account_id = bank.account("alice").row_id;
    tan.send(Some(account_id), &id).unwrap();
    let (_, message) = sms.last().unwrap();
    let code = message
        .strip_prefix("T-")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    tan.confirm(Some(account_id), &id, &code).unwrap();
    let parsed = ChallengeId::parse(&id).unwrap();
    assert!(patch(vec![parsed]).unwrap().is_none(), "the replay runs");
    assert!(bank.account("alice").is_public);
    let again = patch(vec![parsed])
        .unwrap()
        .expect("a used challenge authorises nothing");
    assert_ne!(again.challenges[0].challenge_id, id);
}
