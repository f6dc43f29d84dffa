//! The Corebank account API over real HTTP (corebank spec §3–§10).

use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::support::{ADMIN_PASSWORD, TestServer, assert_error};

impl TestServer {
    fn bank(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(&format!("bank/{path}")))
    }

    async fn register(&self, body: Value) -> reqwest::Response {
        self.bank(Method::POST, "accounts")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn token(&self, user: &str, password: &str, body: Value) -> String {
        let response = self
            .bank(Method::POST, &format!("accounts/{user}/token"))
            .basic_auth(user, Some(password))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }
}

fn alice() -> Value {
    json!({"username": "alice", "password": "alice-password", "name": "Alice Doe"})
}

#[tokio::test]
async fn config_has_every_field() {
    let server =
        TestServer::start_with("[libeufin-bank]\nTAN_EMAIL = /bin/true\nNAME = Test Bank\n").await;
    let config: Value = server.get("bank/config").await.json().await.unwrap();
    for field in [
        "name",
        "version",
        "bank_name",
        "base_url",
        "currency",
        "currency_specification",
        "allow_conversion",
        "allow_registrations",
        "allow_deletions",
        "allow_edit_name",
        "allow_edit_cashout_payto_uri",
        "default_debit_threshold",
        "supported_tan_channels",
        "wire_type",
    ] {
        assert!(config.get(field).is_some(), "missing {field}: {config}");
    }
    assert_eq!(config["bank_name"], "Test Bank");
    assert_eq!(config["supported_tan_channels"], json!(["email"]));
    assert_eq!(config["wire_type"], "x-taler-bank");
    assert_eq!(config["default_debit_threshold"], "KUDOS:0");
    assert_eq!(config["allow_registrations"], true);
    server.stop().await;
}

#[tokio::test]
async fn register_read_and_replay() {
    let server = TestServer::start().await;
    let response = server.register(alice()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"internal_payto_uri": "payto://x-taler-bank/localhost/alice?receiver-name=Alice%20Doe"})
    );
    // An identical replay answers the same; a different one conflicts.
    let replay: Value = server.register(alice()).await.json().await.unwrap();
    assert_eq!(replay, body);
    let mut different = alice();
    different["name"] = json!("Someone Else");
    assert_error(server.register(different).await, 409, 5121).await;
    let data: Value = server
        .bank(Method::GET, "accounts/alice")
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(data["name"], "Alice Doe");
    assert_eq!(
        data["balance"],
        json!({"amount": "KUDOS:0", "credit_debit_indicator": "credit"})
    );
    assert_eq!(data["status"], "active");
    server.stop().await;
}

#[tokio::test]
async fn registration_errors() {
    let server = TestServer::start().await;
    let cases = [
        (
            json!({"username": "bad name", "password": "password1", "name": "x"}),
            400,
            22,
        ),
        (
            json!({"username": "admin", "password": "password1", "name": "x"}),
            409,
            5120,
        ),
        (
            json!({"username": "bob", "password": "short", "name": "x"}),
            409,
            5150,
        ),
        (
            json!({"username": "bob", "password": "x".repeat(65), "name": "x"}),
            409,
            5151,
        ),
        (
            json!({"username": "bob", "password": "password1", "name": "x", "debit_threshold": "KUDOS:5"}),
            409,
            5136,
        ),
        (
            json!({"username": "bob", "password": "password1", "name": "x", "min_cashout": "KUDOS:5"}),
            409,
            5146,
        ),
        (
            json!({"username": "bob", "password": "password1", "name": "x", "tan_channel": "sms"}),
            409,
            5145,
        ),
        (
            json!({"username": "bob", "password": "password1", "name": "x", "tan_channel": "pigeon"}),
            400,
            22,
        ),
        (
            json!({"username": "exchange", "password": "password1", "name": "x"}),
            409,
            9999,
        ),
        (json!({"username": "bob", "password": "password1"}), 400, 22),
    ];
    for (body, status, code) in cases {
        assert_error(server.register(body).await, status, code).await;
    }
    let admin = |body: Value| {
        server
            .bank(Method::POST, "accounts")
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&body)
            .send()
    };
    let bob = |extra: Value| {
        let mut body = json!({"username": "bob", "password": "password1", "name": "Bob"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    assert_error(
        admin(bob(json!({"debit_threshold": "KUDOS:1."})))
            .await
            .unwrap(),
        400,
        5108,
    )
    .await;
    assert_error(
        admin(bob(json!({"debit_threshold": "KUDOS:4503599627370497"})))
            .await
            .unwrap(),
        400,
        5104,
    )
    .await;
    assert_error(
        admin(bob(json!({"debit_threshold": "EUR:1"})))
            .await
            .unwrap(),
        400,
        30,
    )
    .await;
    assert_error(
        admin(bob(
            json!({"tan_channel": "sms", "contact_data": {"phone": "+4179"}}),
        ))
        .await
        .unwrap(),
        409,
        5132,
    )
    .await;
    assert_eq!(
        admin(bob(json!({"debit_threshold": "KUDOS:100"})))
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn bodies_malformed_or_too_large() {
    let server = TestServer::start().await;
    let malformed = server
        .bank(Method::POST, "accounts")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, 22).await;
    let huge = json!({"username": "alice", "password": "alice-password", "name": "x".repeat(5000)});
    assert_error(server.register(huge).await, 413, 32).await;
    // Nothing was stored.
    let response = server
        .bank(Method::GET, "accounts/alice")
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, 5106).await;
    server.stop().await;
}

#[tokio::test]
async fn concurrent_registrations_of_one_username() {
    let server = TestServer::start_with(
        "[libeufin-bank]\nREGISTRATION_BONUS = KUDOS:1\nDEFAULT_DEBT_LIMIT = KUDOS:1000\n",
    )
    .await;
    let attempts = (0..12).map(|i| {
        let mut body = alice();
        if i % 2 == 1 {
            body["name"] = json!(format!("Impostor {i}"));
        }
        server.register(body)
    });
    let responses = futures_util::future::join_all(attempts).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    let created = statuses.iter().filter(|s| **s == 200).count();
    assert!(created >= 1, "{statuses:?}");
    // Exactly one bonus: admin owes 1, alice has 1.
    let admin: Value = server
        .bank(Method::GET, "accounts/admin")
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        admin["balance"],
        json!({"amount": "KUDOS:1", "credit_debit_indicator": "debit"})
    );
    server.stop().await;
}

#[tokio::test]
async fn authentication_errors() {
    let server = TestServer::start().await;
    server.register(alice()).await;
    let get = |auth: Option<&str>| {
        let mut request = server.bank(Method::GET, "accounts/alice");
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        request.send()
    };
    let missing = get(None).await.unwrap();
    assert_eq!(missing.headers()["www-authenticate"], "Basic");
    assert_error(missing, 401, 25).await;
    assert_error(get(Some("WTF")).await.unwrap(), 400, 23).await;
    assert_error(get(Some("Bearer abc")).await.unwrap(), 400, 23).await;
    assert_error(get(Some("Digest x")).await.unwrap(), 401, 40).await;
    let wrong = format!("Basic {}", data_encoding::BASE64.encode(b"alice:wrong"));
    assert_error(get(Some(&wrong)).await.unwrap(), 401, 40).await;
    let unknown = format!("Bearer secret-token:{}", "0".repeat(52));
    assert_error(get(Some(&unknown)).await.unwrap(), 401, 40).await;
    // Authentication runs before the body is parsed.
    let bad_body = server
        .bank(Method::PATCH, "accounts/alice")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_error(bad_body, 401, 25).await;
    server.stop().await;
}

#[tokio::test]
async fn tokens_scopes_and_password_changes() {
    let server = TestServer::start().await;
    server.register(alice()).await;
    let readonly = server
        .token("alice", "alice-password", json!({"scope": "readonly"}))
        .await;
    assert!(readonly.starts_with("secret-token:") && readonly.len() == 13 + 52);
    let read = server
        .bank(Method::GET, "accounts/alice")
        .bearer_auth(&readonly)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let write = server
        .bank(Method::PATCH, "accounts/alice")
        .bearer_auth(&readonly)
        .json(&json!({"is_public": true}))
        .send()
        .await
        .unwrap();
    assert_error(write, 403, 16).await;
    // A token outlives a password change.
    let readwrite = server
        .token(
            "alice",
            "alice-password",
            json!({"scope": "readwrite", "duration": {"d_us": "forever"}}),
        )
        .await;
    let change = server
        .bank(Method::PATCH, "accounts/alice/auth")
        .bearer_auth(&readwrite)
        .json(&json!({"old_password": "alice-password", "new_password": "changed-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), 204);
    let still = server
        .bank(Method::GET, "accounts/alice")
        .bearer_auth(&readwrite)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200);
    let old_login = server
        .bank(Method::GET, "accounts/alice")
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap();
    assert_error(old_login, 401, 40).await;
    // Non-refreshable tokens cannot mint tokens; deleting the token revokes it.
    let mint = server
        .bank(Method::POST, "accounts/alice/token")
        .bearer_auth(&readwrite)
        .json(&json!({"scope": "readonly"}))
        .send()
        .await
        .unwrap();
    assert_error(mint, 403, 16).await;
    let bad_scope = server
        .bank(Method::POST, "accounts/alice/token")
        .basic_auth("alice", Some("changed-password"))
        .json(&json!({"scope": "everything"}))
        .send()
        .await
        .unwrap();
    assert_error(bad_scope, 400, 22).await;
    let basic_delete = server
        .bank(Method::DELETE, "accounts/alice/token")
        .basic_auth("alice", Some("changed-password"))
        .send()
        .await
        .unwrap();
    assert_error(basic_delete, 400, 22).await;
    let delete = server
        .bank(Method::DELETE, "accounts/alice/token")
        .bearer_auth(&readonly)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
    let revoked = server
        .bank(Method::GET, "accounts/alice")
        .bearer_auth(&readonly)
        .send()
        .await
        .unwrap();
    assert_error(revoked, 401, 40).await;
    let for_other = server
        .bank(Method::POST, "accounts/alice/token")
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&json!({"scope": "readonly"}))
        .send()
        .await
        .unwrap();
    assert_error(for_other, 403, 44).await;
    server.stop().await;
}

#[tokio::test]
async fn patch_and_delete() {
    let server = TestServer::start_with("[libeufin-bank]\nALLOW_ACCOUNT_DELETION = YES\n").await;
    server.register(alice()).await;
    server
        .register(json!({"username": "bob", "password": "bob-password", "name": "Bob"}))
        .await;
    let patch = |user: &str, who: (&str, &str), body: Value| {
        server
            .bank(Method::PATCH, &format!("accounts/{user}"))
            .basic_auth(who.0, Some(who.1))
            .json(&body)
            .send()
    };
    let alice_login = ("alice", "alice-password");
    assert_eq!(
        patch(
            "alice",
            alice_login,
            json!({"is_public": true, "contact_data": {"email": "a@example.com"}})
        )
        .await
        .unwrap()
        .status(),
        204
    );
    assert_error(
        patch("alice", alice_login, json!({"name": "Renamed"}))
            .await
            .unwrap(),
        409,
        5135,
    )
    .await;
    assert_error(
        patch("alice", alice_login, json!({"debit_threshold": "KUDOS:9"}))
            .await
            .unwrap(),
        409,
        5136,
    )
    .await;
    assert_error(
        patch("alice", alice_login, json!({"tan_channel": "email"}))
            .await
            .unwrap(),
        409,
        5132,
    )
    .await;
    assert_error(patch("bob", alice_login, json!({})).await.unwrap(), 403, 44).await;
    assert_error(
        patch(
            "admin",
            ("admin", ADMIN_PASSWORD),
            json!({"is_public": true}),
        )
        .await
        .unwrap(),
        409,
        9999,
    )
    .await;
    assert_error(
        patch("nobody", ("admin", ADMIN_PASSWORD), json!({}))
            .await
            .unwrap(),
        404,
        5106,
    )
    .await;
    let public: Value = server
        .get("bank/public-accounts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(public["public_accounts"][0]["username"], "alice");
    let auth = |body: Value| {
        server
            .bank(Method::PATCH, "accounts/alice/auth")
            .basic_auth("alice", Some("alice-password"))
            .json(&body)
            .send()
    };
    assert_error(
        auth(json!({"new_password": "new-password"})).await.unwrap(),
        409,
        5137,
    )
    .await;
    assert_error(
        auth(json!({"old_password": "nope-nope", "new_password": "new-password"}))
            .await
            .unwrap(),
        409,
        5138,
    )
    .await;
    let delete = |user: &str, who: (&str, &str)| {
        server
            .bank(Method::DELETE, &format!("accounts/{user}"))
            .basic_auth(who.0, Some(who.1))
            .send()
    };
    assert_error(
        delete("admin", ("admin", ADMIN_PASSWORD)).await.unwrap(),
        409,
        5120,
    )
    .await;
    assert_eq!(delete("alice", alice_login).await.unwrap().status(), 204);
    assert_error(
        delete("alice", ("admin", ADMIN_PASSWORD)).await.unwrap(),
        404,
        5106,
    )
    .await;
    // A deleted account can no longer log in, and leaves the public list.
    let gone = server
        .bank(Method::GET, "accounts/alice")
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap();
    assert_error(gone, 401, 40).await;
    assert_eq!(server.get("bank/public-accounts").await.status(), 204);
    let as_admin: Value = server
        .bank(Method::GET, "accounts/alice")
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(as_admin["status"], "deleted");
    server.stop().await;
}

#[tokio::test]
async fn deletion_with_money_or_when_disabled() {
    let server = TestServer::start_with(
        "[libeufin-bank]\nREGISTRATION_BONUS = KUDOS:5\nDEFAULT_DEBT_LIMIT = KUDOS:5\n",
    )
    .await;
    server.register(alice()).await;
    let own = server
        .bank(Method::DELETE, "accounts/alice")
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap();
    assert_error(own, 403, 44).await;
    let by_admin = server
        .bank(Method::DELETE, "accounts/alice")
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_error(by_admin, 409, 5123).await;
    // The admin's debt limit is reached: the next bonus cannot be paid.
    let bob = server
        .register(json!({"username": "bob", "password": "bob-password", "name": "Bob"}))
        .await;
    assert_error(bob, 409, 5102).await;
    server.stop().await;
}

#[tokio::test]
async fn listings() {
    let server = TestServer::start().await;
    for (user, public) in [("a1", true), ("b2", false), ("c3", true)] {
        server.register(json!({"username": user, "password": "password1", "name": format!("Name {user}"), "is_public": public})).await;
    }
    let list = |query: &str| {
        server
            .bank(Method::GET, &format!("accounts{query}"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
    };
    let all: Value = list("").await.unwrap().json().await.unwrap();
    let names: Vec<&str> = all["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c3", "b2", "a1", "admin"]);
    let page: Value = list("?limit=1&offset=1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["accounts"][0]["username"], "a1");
    let filtered: Value = list("?filter_name=b2").await.unwrap().json().await.unwrap();
    assert_eq!(filtered["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(list("?filter_name=zzz").await.unwrap().status(), 204);
    assert_error(list("?limit=x").await.unwrap(), 400, 26).await;
    assert_error(list("?offset=-5").await.unwrap(), 400, 26).await;
    let non_admin = server
        .bank(Method::GET, "accounts")
        .basic_auth("a1", Some("password1"))
        .send()
        .await
        .unwrap();
    assert_error(non_admin, 403, 44).await;
    let public: Value = server
        .get("bank/public-accounts?limit=5")
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = public["public_accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a1", "c3"]);
    server.stop().await;
}

#[tokio::test]
async fn closed_registration_needs_the_admin() {
    let server = TestServer::start_with("[libeufin-bank]\nALLOW_REGISTRATION = NO\n").await;
    assert_error(server.register(alice()).await, 401, 25).await;
    let as_admin = server
        .bank(Method::POST, "accounts")
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&alice())
        .send()
        .await
        .unwrap();
    assert_eq!(as_admin.status(), 200);
    let as_alice = server
        .bank(Method::POST, "accounts")
        .basic_auth("alice", Some("alice-password"))
        .json(&json!({"username": "bob", "password": "password1", "name": "Bob"}))
        .send()
        .await
        .unwrap();
    assert_error(as_alice, 403, 44).await;
    server.stop().await;
}

#[tokio::test]
async fn iban_banks_assign_ibans() {
    let server =
        TestServer::start_with("[libeufin-bank]\nWIRE_TYPE = iban\nIBAN_PAYTO_BIC = SANDBOXX\n")
            .await;
    let body: Value = server.register(alice()).await.json().await.unwrap();
    let payto = body["internal_payto_uri"].as_str().unwrap();
    assert!(
        payto.starts_with("payto://iban/SANDBOXX/DE")
            && payto.ends_with("?receiver-name=Alice%20Doe"),
        "{payto}"
    );
    let own = json!({"username": "bob", "password": "password1", "name": "Bob", "payto_uri": "payto://iban/DE89370400440532013000"});
    assert_eq!(server.register(own).await.status(), 200);
    let reuse = json!({"username": "carol", "password": "password1", "name": "Carol", "payto_uri": "payto://iban/DE89370400440532013000"});
    assert_error(server.register(reuse).await, 409, 5122).await;
    server.stop().await;
}

#[tokio::test]
async fn parallel_failed_logins_all_answer_401() {
    // Budgets large enough for the burst: this is about memory, not throttling.
    let server = TestServer::start_with(
        "[talerbox]\nTHROTTLE_ADDRESS_BURST = 1000\nTHROTTLE_ACCOUNT_BURST = 1000\n",
    )
    .await;
    let attempts = (0..64).map(|i| {
        // Known and unknown usernames alike go through the bounded hashing pool.
        let user = if i % 2 == 0 { "admin" } else { "nobody" };
        server
            .bank(Method::GET, &format!("accounts/{user}"))
            .basic_auth(user, Some(format!("guess-{i}")))
            .send()
    });
    for response in futures_util::future::join_all(attempts).await {
        assert_error(response.unwrap(), 401, 40).await;
    }
    let right = server
        .bank(Method::GET, "accounts/admin")
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address_and_account() {
    let server = TestServer::start_with(
        "[talerbox]\nTHROTTLE_ACCOUNT_BURST = 3\nTHROTTLE_ACCOUNT_INTERVAL = 1 h\n\
         TRUSTED_PROXIES = 127.0.0.1\n",
    )
    .await;
    let login = |password: &str, forwarded_for: Option<&str>| {
        let mut request = server
            .bank(Method::GET, "accounts/admin")
            .basic_auth("admin", Some(password));
        if let Some(client) = forwarded_for {
            request = request.header("X-Forwarded-For", client);
        }
        request.send()
    };
    // The budget (3) and the failure that spends it.
    for _ in 0..4 {
        assert_error(login("wrong", None).await.unwrap(), 401, 40).await;
    }
    // Now even the right password from this address waits.
    let throttled = login(ADMIN_PASSWORD, None).await.unwrap();
    let retry: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3000..=3600).contains(&retry), "{retry}");
    assert_error(throttled, 429, 5131).await;
    // The right password from another address, named by the trusted proxy, gets in.
    let elsewhere = login(ADMIN_PASSWORD, Some("198.51.100.7")).await.unwrap();
    assert_eq!(elsewhere.status(), 200);
    // A wrong one from there is judged on its own budget.
    assert_error(login("wrong", Some("198.51.100.7")).await.unwrap(), 401, 40).await;
    server.stop().await;

    // Without trusted proxies, X-Forwarded-For changes nothing.
    let server = TestServer::start_with(
        "[talerbox]\nTHROTTLE_ACCOUNT_BURST = 1\nTHROTTLE_ACCOUNT_INTERVAL = 1 h\n",
    )
    .await;
    for _ in 0..2 {
        assert_error(login_as(&server, "wrong", "203.0.113.1").await, 401, 40).await;
    }
    assert_error(
        login_as(&server, ADMIN_PASSWORD, "203.0.113.2").await,
        429,
        5131,
    )
    .await;
    server.stop().await;
}

async fn login_as(server: &TestServer, password: &str, forwarded_for: &str) -> reqwest::Response {
    server
        .bank(Method::GET, "accounts/admin")
        .basic_auth("admin", Some(password))
        .header("X-Forwarded-For", forwarded_for)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_parallel_burst_of_guesses_cannot_slip_past_the_budget() {
    let server = TestServer::start_with(
        "[talerbox]\nTHROTTLE_ACCOUNT_BURST = 3\nTHROTTLE_ACCOUNT_INTERVAL = 1 h\n",
    )
    .await;
    let guesses = (0..64).map(|i| {
        server
            .bank(Method::GET, "accounts/admin")
            .basic_auth("admin", Some(format!("guess-{i}")))
            .send()
    });
    let mut statuses: Vec<u16> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(|response| response.unwrap().status().as_u16())
        .collect();
    statuses.sort_unstable();
    // The budget (3) and the failure that spends it are checked; the rest wait their turn
    // and find the budget spent.
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        60,
        "{statuses:?}"
    );
    server.stop().await;
}

/// Bodies that are JSON but not objects, for every decoder's one shape rule.
const NOT_OBJECTS: [&str; 5] = [
    r#"["alice", "alice-password", "Alice"]"#,
    "[]",
    r#""alice""#,
    "42",
    "null",
];

#[tokio::test]
async fn arrays_and_scalars_are_not_bodies() {
    let server = TestServer::start().await;
    assert_eq!(server.register(alice()).await.status(), 200);
    for body in NOT_OBJECTS {
        let register = server
            .bank(Method::POST, "accounts")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(register, 400, 22).await;
        let patch = server
            .bank(Method::PATCH, "accounts/alice")
            .basic_auth("alice", Some("alice-password"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(patch, 400, 22).await;
        let token = server
            .bank(Method::POST, "accounts/alice/token")
            .basic_auth("alice", Some("alice-password"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(token, 400, 22).await;
    }
    // A nested object in its sequence form is refused too, and changes nothing.
    let patch = server
        .bank(Method::PATCH, "accounts/alice")
        .basic_auth("alice", Some("alice-password"))
        .json(&json!({"contact_data": ["alice@example.com"]}))
        .send()
        .await
        .unwrap();
    assert_error(patch, 400, 22).await;
    let account: serde_json::Value = server
        .bank(Method::GET, "accounts/alice")
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(account["contact_data"].get("email").is_none(), "{account}");
    server.stop().await;
}

#[tokio::test]
async fn strangers_are_refused_before_their_bodies_are_read() {
    let server = TestServer::start().await;
    assert_eq!(server.register(alice()).await.status(), 200);
    let bob = json!({"username": "bob", "password": "bob-password", "name": "Bob"});
    assert_eq!(server.register(bob).await.status(), 200);
    for path in ["accounts/alice", "accounts/alice/auth"] {
        for body in ["{not json", "[1]", r#"{"new_password": 5}"#] {
            // Bob is who he says, but no owner of alice's account: 403/44, as libeufin.
            let foreign = server
                .bank(Method::PATCH, path)
                .basic_auth("bob", Some("bob-password"))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_error(foreign, 403, 44).await;
            let anonymous = server
                .bank(Method::PATCH, path)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_error(anonymous, 401, 25).await;
            let wrong_password = server
                .bank(Method::PATCH, path)
                .basic_auth("alice", Some("not-her-password"))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_error(wrong_password, 401, 40).await;
        }
    }
    let foreign_token = server
        .bank(Method::POST, "accounts/alice/token")
        .basic_auth("bob", Some("bob-password"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(foreign_token, 403, 44).await;
    server.stop().await;
}
