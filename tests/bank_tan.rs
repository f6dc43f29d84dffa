//! The bank's second factor over real HTTP (corebank-tan.md): the unauthenticated
//! challenge endpoints, their errors, and the outbox delivery.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_error};

const OUTBOX_TAN: &str =
    "[libeufin-bank]\nTAN_SMS = talerbox-outbox\nTAN_EMAIL = talerbox-outbox\n";

async fn post(server: &TestServer, path: &str, body: Option<Value>) -> reqwest::Response {
    let request = server
        .client
        .request(Method::POST, server.url(&format!("bank/{path}")));
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap()
}

#[tokio::test]
async fn challenge_endpoints_answer_unknown_challenges_and_bad_bodies() {
    let server = TestServer::start_with(OUTBOX_TAN).await;
    // A well-formed but unknown id, a malformed id, and an unknown account: 404/5107.
    let unknown = "0000000000000000000000000Z";
    for path in [
        format!("accounts/admin/challenge/{unknown}"),
        "accounts/admin/challenge/not-an-id".to_owned(),
        format!("accounts/nobody/challenge/{unknown}"),
    ] {
        assert_error(post(&server, &path, None).await, 404, 5107).await;
        let confirm = format!("{path}/confirm");
        let answer = post(&server, &confirm, Some(json!({"tan": "12345678"}))).await;
        assert_error(answer, 404, 5107).await;
    }
    // The confirm body is checked first: 400/22 even for an unknown challenge.
    let confirm = format!("accounts/admin/challenge/{unknown}/confirm");
    for body in [json!({}), json!({"tan": 12345678}), json!([])] {
        assert_error(post(&server, &confirm, Some(body)).await, 400, 22).await;
    }
    // No authentication is needed, and a malformed Authorization header is ignored.
    let answer = server
        .client
        .post(server.url(&format!("bank/accounts/admin/challenge/{unknown}")))
        .header("Authorization", "Bogus !!")
        .send()
        .await
        .unwrap();
    assert_error(answer, 404, 5107).await;
    server.stop().await;
}

#[tokio::test]
async fn cors_preflight_allows_the_challenge_ids_header() {
    let server = TestServer::start().await;
    let answer = server
        .client
        .request(Method::OPTIONS, server.url("bank/accounts/alice"))
        .header("Origin", "https://spa.example")
        .header("Access-Control-Request-Method", "PATCH")
        .header("Access-Control-Request-Headers", "taler-challenge-ids")
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    let allowed = answer.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    // The permissive CORS layer answers the wildcard, which covers this header.
    assert!(
        allowed == "*" || allowed.contains("taler-challenge-ids"),
        "{allowed}"
    );
    server.stop().await;
}

/// PATCH /accounts/alice as alice (Basic), with the solved ids if any.
async fn patch_alice(server: &TestServer, body: &Value, ids: &[&str]) -> reqwest::Response {
    let mut request = server
        .client
        .patch(server.url("bank/accounts/alice"))
        .basic_auth("alice", Some("alice-password"))
        .json(body);
    if !ids.is_empty() {
        request = request.header("Taler-Challenge-Ids", ids.join(", "));
    }
    request.send().await.unwrap()
}

/// The challenges of a 202, as (id, channel, address), after checking its shape.
async fn challenges(response: reqwest::Response, combi_and: bool) -> Vec<(String, String, String)> {
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    assert_eq!(body["combi_and"], combi_and, "{body}");
    body["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c.as_object().unwrap().len(), 3, "{c}");
            let id = c["challenge_id"].as_str().unwrap().to_owned();
            assert_eq!(id.len(), 26);
            (
                id,
                c["tan_channel"].as_str().unwrap().to_owned(),
                c["tan_info"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Sends the code of challenge `id` to the outbox and solves it.
async fn solve(server: &TestServer, id: &str) {
    let sent = post(server, &format!("accounts/alice/challenge/{id}"), None).await;
    assert_eq!(sent.status(), 200);
    let code = crate::support::outbox_pin(server.dir.path());
    let confirm = format!("accounts/alice/challenge/{id}/confirm");
    let answer = post(server, &confirm, Some(json!({"tan": format!("T-{code}")}))).await;
    assert_eq!(answer.status(), 204);
}

async fn start_with_alice() -> TestServer {
    let server =
        TestServer::start_with(&format!("{OUTBOX_TAN}ALLOW_ACCOUNT_DELETION = yes\n")).await;
    let created = post(
        &server,
        "accounts",
        Some(json!({"username": "alice", "password": "alice-password", "name": "Alice"})),
    )
    .await;
    assert_eq!(created.status(), 200);
    server
}

async fn alice_account(server: &TestServer) -> Value {
    server
        .client
        .get(server.url("bank/accounts/alice"))
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn turning_2fa_on_and_changing_the_phone_take_the_rounds_of_the_spec() {
    let server = start_with_alice().await;
    // Row 1 of §8.2: no 2FA yet, so only the new address is challenged.
    let enable = json!({"contact_data": {"phone": "+99", "email": "e@x.ch"}, "tan_channel": "sms"});
    let round = challenges(patch_alice(&server, &enable, &[]).await, true).await;
    assert_eq!(round.len(), 1);
    assert_eq!((round[0].1.as_str(), round[0].2.as_str()), ("sms", "+99"));
    let id = round[0].0.clone();
    // Send: 200 with the two promises; an immediate second send is 429/5131.
    let sent = post(
        &server,
        &format!("accounts/alice/challenge/{id}"),
        Some(json!({})),
    )
    .await;
    assert_eq!(sent.status(), 200);
    let promises: Value = sent.json().await.unwrap();
    let expiration = promises["solve_expiration"]["t_s"].as_i64().unwrap();
    let retransmission = promises["earliest_retransmission"]["t_s"].as_i64().unwrap();
    assert!(expiration - retransmission > 3000, "{promises}");
    let again = post(&server, &format!("accounts/alice/challenge/{id}"), None).await;
    assert_error(again, 429, 5131).await;
    let code = crate::support::outbox_pin(server.dir.path());
    let (status, listing, _) =
        crate::support::talerbox(server.dir.path(), &["challenger", "outbox"]);
    assert_eq!(status, 0);
    assert!(
        listing.contains(&code) && listing.contains("+99"),
        "{listing}"
    );
    // Nothing changes before the replay.
    assert!(alice_account(&server).await.get("tan_channel").is_none());
    let confirm = format!("accounts/alice/challenge/{id}/confirm");
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    assert_error(
        post(&server, &confirm, Some(json!({"tan": wrong}))).await,
        409,
        5134,
    )
    .await;
    let right = post(
        &server,
        &confirm,
        Some(json!({"tan": format!(" T-{code} ")})),
    )
    .await;
    assert_eq!(right.status(), 204);
    // Solved: confirm stays 204 whatever the code, a send is 410/9999.
    assert_eq!(
        post(&server, &confirm, Some(json!({"tan": wrong})))
            .await
            .status(),
        204
    );
    let gone = post(&server, &format!("accounts/alice/challenge/{id}"), None).await;
    assert_error(gone, 410, 9999).await;
    // Another body does not match the solved challenge: a new 202.
    let other = json!({"contact_data": {"phone": "+98", "email": "e@x.ch"}, "tan_channel": "sms"});
    let other_round = challenges(patch_alice(&server, &other, &[&id]).await, true).await;
    assert_eq!(other_round[0].2, "+98");
    // The replay with the same body (keys in another order) runs.
    let replay = json!({"tan_channel": "sms", "contact_data": {"email": "e@x.ch", "phone": "+99"}});
    assert_eq!(patch_alice(&server, &replay, &[&id]).await.status(), 204);
    let account = alice_account(&server).await;
    assert_eq!(account["tan_channel"], "sms", "{account}");
    assert_eq!(account["contact_data"]["phone"], "+99", "{account}");
    // Single use: the same replay now meets the current factor, round 1.
    let round = challenges(patch_alice(&server, &replay, &[&id]).await, false).await;
    assert_eq!((round[0].1.as_str(), round[0].2.as_str()), ("sms", "+99"));
    // The pending challenge of the other body died with the change of the factor set.
    let other_id = format!("accounts/alice/challenge/{}", other_round[0].0);
    assert_error(post(&server, &other_id, None).await, 404, 5144).await;
    // Row 2 of §8.2: a new phone needs the current phone, then the new one.
    let change = json!({"contact_data": {"phone": "+98"}});
    let first = challenges(patch_alice(&server, &change, &[]).await, false).await;
    assert_eq!(first[0].2, "+99");
    solve(&server, &first[0].0).await;
    let second = challenges(patch_alice(&server, &change, &[&first[0].0]).await, true).await;
    assert_eq!((second[0].1.as_str(), second[0].2.as_str()), ("sms", "+98"));
    solve(&server, &second[0].0).await;
    assert_eq!(
        patch_alice(&server, &change, &[&second[0].0])
            .await
            .status(),
        204
    );
    assert_eq!(alice_account(&server).await["contact_data"]["phone"], "+98");
    // The round-1 challenge of the other pending request is dead now: 404/5144.
    let dead = format!("accounts/alice/challenge/{}", first[0].0);
    let dead_round = challenges(patch_alice(&server, &json!({}), &[]).await, false).await;
    let pending = format!("accounts/alice/challenge/{}", dead_round[0].0);
    let admin_change = server
        .client
        .patch(server.url("bank/accounts/alice"))
        .basic_auth("admin", Some(crate::support::ADMIN_PASSWORD))
        .json(&json!({"contact_data": {"phone": "+97"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin_change.status(), 204);
    assert_error(post(&server, &pending, None).await, 404, 5144).await;
    let confirm_dead = format!("{pending}/confirm");
    let answer = post(&server, &confirm_dead, Some(json!({"tan": "12345678"}))).await;
    assert_error(answer, 404, 5144).await;
    // The solved but unused round-1 challenge died with the phone change (§8.3); the used
    // round-2 challenge counts as solved: 410.
    assert_error(post(&server, &dead, None).await, 404, 5144).await;
    let used = format!("accounts/alice/challenge/{}", second[0].0);
    assert_error(post(&server, &used, None).await, 410, 9999).await;
    server.stop().await;
}

#[tokio::test]
async fn codes_expire_by_attempts_and_are_checked_before_sending() {
    let server = start_with_alice().await;
    let enable = json!({"contact_data": {"email": "e@x.ch"}, "tan_channel": "email"});
    let round = challenges(patch_alice(&server, &enable, &[]).await, true).await;
    assert_eq!(
        (round[0].1.as_str(), round[0].2.as_str()),
        ("email", "e@x.ch")
    );
    let id = &round[0].0;
    let confirm = format!("accounts/alice/challenge/{id}/confirm");
    // No code sent yet: 409/5144.
    let early = post(&server, &confirm, Some(json!({"tan": "12345678"}))).await;
    assert_error(early, 409, 5144).await;
    assert_eq!(
        post(&server, &format!("accounts/alice/challenge/{id}"), None)
            .await
            .status(),
        200
    );
    let code = crate::support::outbox_pin(server.dir.path());
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    for status in [409, 409] {
        let answer = post(&server, &confirm, Some(json!({"tan": wrong}))).await;
        assert_error(answer, status, 5134).await;
    }
    assert_error(
        post(&server, &confirm, Some(json!({"tan": wrong}))).await,
        429,
        5131,
    )
    .await;
    // Exhausted: even the right code is refused until a new code is sent.
    assert_error(
        post(&server, &confirm, Some(json!({"tan": code}))).await,
        429,
        5131,
    )
    .await;
    assert!(alice_account(&server).await.get("tan_channel").is_none());
    // Another account's challenge is not found under alice's name and vice versa.
    let foreign = format!("accounts/admin/challenge/{id}");
    assert_error(post(&server, &foreign, None).await, 404, 5107).await;
    server.stop().await;
}

#[tokio::test]
async fn admin_and_accounts_without_2fa_are_never_challenged() {
    let server = start_with_alice().await;
    // No 2FA and no new factor: a plain 204, as before.
    let plain = json!({"contact_data": {"email": "e@x.ch"}});
    assert_eq!(patch_alice(&server, &plain, &[]).await.status(), 204);
    // The admin turns alice's 2FA on without any challenge.
    let admin = server
        .client
        .patch(server.url("bank/accounts/alice"))
        .basic_auth("admin", Some(crate::support::ADMIN_PASSWORD))
        .json(&json!({"tan_channel": "email"}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 204);
    assert_eq!(alice_account(&server).await["tan_channel"], "email");
    // Now every owner PATCH is challenged, even `{}` (§3.3).
    let round = challenges(patch_alice(&server, &json!({}), &[]).await, false).await;
    assert_eq!(
        (round[0].1.as_str(), round[0].2.as_str()),
        ("email", "e@x.ch")
    );
    // Checks before the gate answer without a challenge (409/5129: email removed).
    let missing = json!({"contact_data": {"email": null}});
    assert_error(patch_alice(&server, &missing, &[]).await, 409, 5129).await;
    server.stop().await;
}

/// Alice with 2FA on by e-mail, set by the admin (never challenged).
async fn start_with_alice_2fa() -> TestServer {
    let server = start_with_alice().await;
    let admin = server
        .client
        .patch(server.url("bank/accounts/alice"))
        .basic_auth("admin", Some(crate::support::ADMIN_PASSWORD))
        .json(&json!({"contact_data": {"email": "e@x.ch"}, "tan_channel": "email"}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 204);
    server
}

#[tokio::test]
async fn password_change_token_creation_and_deletion_are_gated() {
    let server = start_with_alice_2fa().await;
    let alice = |method: Method, path: &str, ids: &[&str]| {
        let mut request = server
            .client
            .request(method, server.url(&format!("bank/accounts/alice{path}")))
            .basic_auth("alice", Some("alice-password"));
        if !ids.is_empty() {
            request = request.header("Taler-Challenge-Ids", ids.join(","));
        }
        request
    };
    // Token creation under Basic: 202, then the replay with the same body mints it.
    let token_body = json!({"scope": "readwrite", "refreshable": true});
    let sent = alice(Method::POST, "/token", &[])
        .json(&token_body)
        .send()
        .await
        .unwrap();
    let round = challenges(sent, false).await;
    assert_eq!(
        (round[0].1.as_str(), round[0].2.as_str()),
        ("email", "e@x.ch")
    );
    solve(&server, &round[0].0).await;
    let minted = alice(Method::POST, "/token", &[&round[0].0])
        .json(&token_body)
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), 200);
    let minted: Value = minted.json().await.unwrap();
    let token = minted["access_token"].as_str().unwrap().to_owned();
    // Refreshing with the Bearer token is not gated.
    let refreshed = server
        .client
        .post(server.url("bank/accounts/alice/token"))
        .bearer_auth(&token)
        .json(&json!({"scope": "readonly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    // The password change: the gate precedes the old-password check, so a wrong old
    // password gets a 202, and 409/5138 only on the replay.
    let wrong = json!({"old_password": "nope", "new_password": "new-alice-password"});
    let round = challenges(
        alice(Method::PATCH, "/auth", &[])
            .json(&wrong)
            .send()
            .await
            .unwrap(),
        false,
    )
    .await;
    solve(&server, &round[0].0).await;
    let refused = alice(Method::PATCH, "/auth", &[&round[0].0])
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_error(refused, 409, 5138).await;
    // The failed replay rolled back: the challenge still counts, but only for its body.
    let right = json!({"old_password": "alice-password", "new_password": "new-alice-password"});
    let other = alice(Method::PATCH, "/auth", &[&round[0].0])
        .json(&right)
        .send()
        .await
        .unwrap();
    let round2 = challenges(other, false).await;
    solve(&server, &round2[0].0).await;
    // A Bearer replay of the same owner works too.
    let changed = server
        .client
        .patch(server.url("bank/accounts/alice/auth"))
        .bearer_auth(&token)
        .header("Taler-Challenge-Ids", round2[0].0.as_str())
        .json(&right)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    // Deletion: 202 (any body is ignored), then the replay deletes.
    let delete = |ids: Vec<String>| {
        let mut request = server
            .client
            .delete(server.url("bank/accounts/alice"))
            .basic_auth("alice", Some("new-alice-password"));
        if !ids.is_empty() {
            request = request.header("Taler-Challenge-Ids", ids.join(","));
        }
        request.send()
    };
    let round = challenges(delete(Vec::new()).await.unwrap(), false).await;
    solve(&server, &round[0].0).await;
    // A challenge solved for another operation does not count here.
    let other_op = challenges(delete(vec![round2[0].0.clone()]).await.unwrap(), false).await;
    assert_ne!(other_op[0].0, round[0].0);
    assert_eq!(
        delete(vec![round[0].0.clone()]).await.unwrap().status(),
        204
    );
    // The account is gone, and so are its challenges: 404/5107.
    let gone = post(
        &server,
        &format!("accounts/alice/challenge/{}", round[0].0),
        None,
    )
    .await;
    assert_error(gone, 404, 5107).await;
    server.stop().await;
}

#[tokio::test]
async fn config_reports_v10_and_the_configured_channels_in_order() {
    for (extra, channels) in [
        (OUTBOX_TAN, json!(["sms", "email"])),
        (
            "[libeufin-bank]\nTAN_EMAIL = talerbox-outbox\n",
            json!(["email"]),
        ),
        ("[libeufin-bank]\nTAN_SMS = /bin/true\n", json!(["sms"])),
        ("", json!([])),
    ] {
        let server = TestServer::start_with(extra).await;
        let config: Value = server.get("bank/config").await.json().await.unwrap();
        assert_eq!(config["version"], "10:0:0");
        assert_eq!(config["supported_tan_channels"], channels, "{extra}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_failing_script_is_502_and_a_dropped_channel_409() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tan-fail.sh");
    let record = dir.path().join("record");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s|' \"$1\" >> {0}; cat >> {0}; exit 3\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let extra = format!(
        "[libeufin-bank]\nTAN_SMS = {}\nTAN_EMAIL = talerbox-outbox\nNAME = Test Bank\n",
        script.display()
    );
    let server = TestServer::start_in(dir, &extra, Default::default()).await;
    let created = post(
        &server,
        "accounts",
        Some(json!({"username": "alice", "password": "alice-password", "name": "Alice"})),
    )
    .await;
    assert_eq!(created.status(), 200);
    let enable = json!({"contact_data": {"phone": "+41791234567"}, "tan_channel": "sms"});
    let round = challenges(patch_alice(&server, &enable, &[]).await, true).await;
    let send = format!("accounts/alice/challenge/{}", round[0].0);
    assert_error(post(&server, &send, None).await, 502, 5133).await;
    // The script got the address and the message; a failed send starts no retransmission
    // period, so the next send runs the script again (with the same code).
    let recorded = std::fs::read_to_string(server.dir.path().join("record")).unwrap();
    assert!(recorded.starts_with("+41791234567|T-"), "{recorded}");
    assert!(
        recorded.ends_with(" is your Test Bank verification code"),
        "{recorded}"
    );
    assert_error(post(&server, &send, None).await, 502, 5133).await;
    let again = std::fs::read_to_string(server.dir.path().join("record")).unwrap();
    assert_eq!(again, format!("{recorded}{recorded}"));
    // Restarted without the sms channel: its challenges can no longer be sent.
    let dir = server.stop_keeping_data().await;
    let server = TestServer::start_in(
        dir,
        "[libeufin-bank]\nTAN_EMAIL = talerbox-outbox\n",
        Default::default(),
    )
    .await;
    assert_error(post(&server, &send, None).await, 409, 5132).await;
    server.stop().await;
}
