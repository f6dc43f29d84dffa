//! The AML rules over in-memory ports, with the vectors of taler-primitives.md §4–§5.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::domain::primitives::{
    AttributeKey, EddsaPrivateKey, EddsaPublicKey, NormalizedPaytoHash, Payto, Timestamp,
    sign_purpose,
};
use crate::ports::aml::{AttributeStore, DecisionStore, InMemoryAmlStore, OfficerStore};
use crate::ports::attribute_cipher::{AttributeCipher, TalerAttributeCipher};
use crate::ports::clock::FakeClock;
use crate::ports::pdf::TextPdfRenderer;
use crate::ports::random::SeededRandom;

const A_QUERY_SIG: &str = "6Z4JPM58WFZ8AHWSM9K5DCNXG537ZYB8Q4D7WXHA3JDP6SHECV9SZGKJ0TZRS80KT8PRT7223SGMJDKKG7SJJM31WZCK5FN4ZATCA20";
const B_QUERY_SIG: &str = "0GZVFEHZR6XV173F0Q8EJPBKN2ZH8K9PC4Y6N75C094Q36J0SJ2J7BH4P012E581TPQH4ANFAJFHVS25WSWSAJ0EC0QDJP0R1MV4408";
const A_DECISION_SIG: &str = "4R0EP3ERCM2FVXV9C0JWT1DYZ02GPWJWSN64N8PG0V5XJX0NVKDX8DBCTE4QGX4MQV004BCDW0C5QAHXPJCDAD4BC9Q3HXWYS2CN238";
const NOW: u64 = 1_700_000_500;

fn seed(start: u8) -> EddsaPrivateKey {
    EddsaPrivateKey::from_seed(std::array::from_fn(|i| start + i as u8))
}

fn officer_a() -> EddsaPublicKey {
    seed(0x00).public_key()
}

fn master() -> EddsaPrivateKey {
    seed(0x20)
}

struct Fixture {
    service: AmlService,
    store: Arc<InMemoryAmlStore>,
    cipher: Arc<TalerAttributeCipher>,
    journal: Arc<crate::ports::journal::InMemoryJournal>,
}

fn fixture_with(pdf_enabled: bool) -> Fixture {
    let store = Arc::new(InMemoryAmlStore::default());
    let cipher = Arc::new(TalerAttributeCipher::new(AttributeKey::from_secret_text(
        "talerbox-test-key-A",
    )));
    let journal = Arc::new(crate::ports::journal::InMemoryJournal::new(Arc::new(
        FakeClock::at(Timestamp::from_seconds(NOW).unwrap()),
    )));
    let ports = AmlPorts {
        officers: store.clone(),
        attributes: store.clone(),
        decisions: store.clone(),
        kyc: Arc::new(crate::ports::kyc::InMemoryKycStore::default()),
        cipher: cipher.clone(),
        pdf: Arc::new(TextPdfRenderer),
        clock: Arc::new(FakeClock::at(Timestamp::from_seconds(NOW).unwrap())),
        random: Arc::new(SeededRandom::new(7)),
        journal: journal.clone(),
        journal_key: crate::domain::primitives::EddsaPrivateKey::from_seed([4; 32]),
    };
    let settings = AmlSettings {
        master_pub: master().public_key(),
        pdf_enabled,
        default_rules: json!({"rules": []}),
        measures: json!({"roots": {}}),
    };
    Fixture {
        service: AmlService::new(ports, settings),
        store,
        cipher,
        journal,
    }
}

fn fixture() -> Fixture {
    fixture_with(true)
}

fn code(error: &AmlError) -> u32 {
    error.code().number()
}

fn account() -> NormalizedPaytoHash {
    Payto::parse_full("payto://iban/DE89370400440532013000?receiver-name=Alice")
        .unwrap()
        .h_normalized()
}

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn attributes(value: serde_json::Value) -> AttributeMap {
    serde_json::from_value(value).unwrap()
}

impl Fixture {
    fn enable_a(&self) -> Officer {
        self.service
            .enable_officer(&officer_a(), "Olivia Officer", false)
            .unwrap()
    }

    fn file(&self, h_payto: NormalizedPaytoHash, value: serde_json::Value) -> u64 {
        self.service
            .store_attributes(StoreAttributes {
                h_payto,
                attributes: attributes(value),
                source: AttributeSource::Customer {
                    provider: Some("FORM".into()),
                },
                expiration_time: Timestamp::never(),
                process_serial: None,
            })
            .unwrap()
    }

    fn history(&self, officer: &Officer, pairs: &[(&str, &str)]) -> Option<AttributeHistory> {
        let report = self
            .service
            .attributes(
                officer,
                &account().to_string(),
                &query(pairs),
                ExportFormat::Json,
            )
            .unwrap()?;
        match report {
            AttributeReport::Json(history) => Some(history),
            AttributeReport::Pdf { .. } => panic!("asked for JSON"),
        }
    }
}

// ---- the signature check (§3) ----

#[test]
fn the_vector_signature_authenticates_officer_a() {
    let f = fixture();
    f.enable_a();
    let officer = f
        .service
        .authenticate(&officer_a(), Some(A_QUERY_SIG))
        .unwrap();
    assert_eq!(officer.name, "Olivia Officer");
    // Lower case and aliases decode to the same bytes.
    let lower = A_QUERY_SIG.to_lowercase();
    assert!(f.service.authenticate(&officer_a(), Some(&lower)).is_ok());
}

#[test]
fn bad_signatures_are_403_1033_before_the_officer_lookup() {
    let f = fixture();
    // Officer A is not even registered: the signature is checked first.
    for header in [
        None,
        Some(""),
        Some("not base32!"),
        Some(&A_QUERY_SIG[..102]),
        Some(B_QUERY_SIG),
        Some(A_DECISION_SIG),
    ] {
        let err = f.service.authenticate(&officer_a(), header).unwrap_err();
        assert!(
            matches!(err, AmlError::SignatureInvalid(_)),
            "{header:?}: {err}"
        );
        assert_eq!(code(&err), 1033);
    }
    let mut flipped: Vec<char> = A_QUERY_SIG.chars().collect();
    flipped[10] = if flipped[10] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    assert_eq!(
        code(
            &f.service
                .authenticate(&officer_a(), Some(&flipped))
                .unwrap_err()
        ),
        1033
    );
}

#[test]
fn a_registered_officer_with_another_officers_signature_is_refused() {
    let f = fixture();
    f.enable_a();
    f.service
        .enable_officer(&seed(0x40).public_key(), "Oscar Other", false)
        .unwrap();
    let err = f
        .service
        .authenticate(&officer_a(), Some(B_QUERY_SIG))
        .unwrap_err();
    assert!(matches!(err, AmlError::SignatureInvalid(_)));
}

#[test]
fn unknown_disabled_and_read_only_officers() {
    let f = fixture();
    let err = f
        .service
        .authenticate(&officer_a(), Some(A_QUERY_SIG))
        .unwrap_err();
    assert!(matches!(err, AmlError::OfficerUnknown));
    assert_eq!(code(&err), 1034);
    f.service.enable_officer(&officer_a(), "Ro", true).unwrap();
    assert!(
        f.service
            .authenticate(&officer_a(), Some(A_QUERY_SIG))
            .is_ok()
    );
    f.service.disable_officer(&officer_a()).unwrap().unwrap();
    let err = f
        .service
        .authenticate(&officer_a(), Some(A_QUERY_SIG))
        .unwrap_err();
    assert!(matches!(err, AmlError::OfficerDisabled));
    assert_eq!(code(&err), 1034);
}

#[test]
fn officer_pub_segments() {
    assert_eq!(
        parse_officer_pub("0EGGFFZKSR8BW7BGVMCEEJY0K5KY9NHGKEJGTQRXVJ3684JN66W0").unwrap(),
        officer_a()
    );
    assert_eq!(
        parse_officer_pub("0eggffzksr8bw7bgvmceejy0k5ky9nhgkejgtqrxvj3684jn66w0").unwrap(),
        officer_a()
    );
    for bad in [
        "",
        "0EGG",
        A_QUERY_SIG,
        "0EGGFFZKSR8BW7BGVMCEEJY0K5KY9NHGKEJGTQRXVJ3684JN66W!",
    ] {
        assert_eq!(code(&parse_officer_pub(bad).unwrap_err()), 1032, "{bad}");
    }
}

// ---- the attribute history (§4) ----

#[test]
fn history_in_the_spec_example_order() {
    let f = fixture();
    let officer = f.enable_a();
    let other = NormalizedPaytoHash([9; 32]);
    for rowid in 1..=20u64 {
        let owner = if [3, 7, 8, 12, 20].contains(&rowid) {
            account()
        } else {
            other
        };
        let filed = f.file(owner, json!({"FORM_ID": "test", "N": rowid}));
        assert_eq!(filed, rowid);
    }
    let rowids = |pairs: &[(&str, &str)]| -> Vec<u64> {
        f.history(&officer, pairs)
            .map(|h| h.events.iter().map(|e| e.rowid).collect())
            .unwrap_or_default()
    };
    assert_eq!(rowids(&[]), [20, 12, 8, 7, 3]);
    assert_eq!(rowids(&[("limit", "-2")]), [20, 12]);
    assert_eq!(rowids(&[("limit", "-2"), ("offset", "12")]), [8, 7]);
    assert_eq!(rowids(&[("limit", "2")]), [3, 7]);
    assert_eq!(rowids(&[("limit", "2"), ("offset", "7")]), [8, 12]);
    assert!(
        f.history(&officer, &[("limit", "5"), ("offset", "20")])
            .is_none()
    );
    assert!(f.history(&officer, &[("limit", "0")]).is_none());
    let newest = f.history(&officer, &[("limit", "-1")]).unwrap();
    let event = &newest.events[0];
    assert_eq!(
        event.attributes,
        Some(attributes(json!({"FORM_ID": "test", "N": 20})))
    );
    assert_eq!(event.collection_time, Timestamp::from_seconds(NOW).unwrap());
    assert!(!event.by_aml_officer);
}

#[test]
fn unknown_accounts_have_no_history() {
    let f = fixture();
    let officer = f.enable_a();
    f.file(NormalizedPaytoHash([9; 32]), json!({"FORM_ID": "x"}));
    assert!(f.history(&officer, &[]).is_none());
}

#[test]
fn undecryptable_rows_are_listed_without_attributes() {
    let f = fixture();
    let officer = f.enable_a();
    f.file(account(), json!({"FORM_ID": "new"}));
    // A row sealed under an old key, and one that is not a blob at all.
    let old = TalerAttributeCipher::new(AttributeKey::from_secret_text("old key"));
    for encrypted in [
        old.seal(&attributes(json!({"FORM_ID": "old"})), [1; 24])
            .unwrap(),
        b"corrupt".to_vec(),
    ] {
        f.store
            .append_attributes(&NewAttributeRecord {
                h_payto: account(),
                collection_time: Timestamp::from_seconds(1).unwrap(),
                expiration_time: Timestamp::never(),
                source: AttributeSource::Officer(officer_a()),
                form_id: None,
                process_serial: None,
                encrypted,
            })
            .unwrap();
    }
    let history = f.history(&officer, &[]).unwrap();
    assert_eq!(history.events.len(), 3);
    assert_eq!(history.events[0].attributes, None);
    assert!(history.events[0].by_aml_officer);
    assert_eq!(history.events[1].attributes, None);
    assert_eq!(
        history.events[2].attributes,
        Some(attributes(json!({"FORM_ID": "new"})))
    );
    let json = serde_json::to_value(history.json()).unwrap();
    assert!(json["details"][0].get("attributes").is_none());
    assert_eq!(json["details"][0]["by_aml_officer"], true);
}

#[test]
fn the_vector_blob_is_read_from_the_store() {
    let f = fixture();
    let officer = f.enable_a();
    let blob = data_encoding::HEXLOWER
        .decode(
            concat!(
                "000102030405060708090a0b0c0d0e0f10111213141516176da33ebce571162c",
                "5e7582101ef7f573eb18a3c572aa6854d4951d2412a4d7122b1710cf13f9610b",
                "3fbad9255b9e92d08555f184355499f41b93c7a1a111ee79d625fb31719be1c7",
                "8c"
            )
            .as_bytes(),
        )
        .unwrap();
    f.store
        .append_attributes(&NewAttributeRecord {
            h_payto: account(),
            collection_time: Timestamp::from_seconds(1_700_000_123).unwrap(),
            expiration_time: Timestamp::never(),
            source: AttributeSource::Customer { provider: None },
            form_id: Some("test".into()),
            process_serial: None,
            encrypted: blob,
        })
        .unwrap();
    let history = f.history(&officer, &[]).unwrap();
    assert_eq!(
        history.events[0].attributes,
        Some(attributes(
            json!({"FORM_ID": "test", "FULL_NAME": "Alice Example"})
        ))
    );
}

#[test]
fn stored_rows_carry_source_form_id_and_a_fresh_nonce() {
    let f = fixture();
    let first = f.file(account(), json!({"FORM_ID": "personal", "FULL_NAME": "A"}));
    let second = f.file(account(), json!({"FORM_ID": "personal", "FULL_NAME": "A"}));
    let rows = f.store.attributes(&account(), &Page::new(10, 0)).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.rowid).collect::<Vec<_>>(),
        [first, second]
    );
    assert_eq!(rows[0].form_id.as_deref(), Some("personal"));
    assert_eq!(
        rows[0].source,
        AttributeSource::Customer {
            provider: Some("FORM".into())
        }
    );
    assert_ne!(rows[0].encrypted[..24], rows[1].encrypted[..24]);
    assert!(f.cipher.open(&rows[0].encrypted).is_some());
}

#[test]
fn path_and_query_errors_in_order() {
    let f = fixture();
    let officer = f.enable_a();
    let attributes = |h: &str, pairs: &[(&str, &str)], format| {
        f.service
            .attributes(&officer, h, &query(pairs), format)
            .unwrap_err()
    };
    // A 64-byte hash, garbage, and an empty segment: 400/29, before the query.
    let long = crate::domain::primitives::sha512(b"x").to_string();
    for bad in [long.as_str(), "nope", ""] {
        assert_eq!(
            code(&attributes(bad, &[("limit", "x")], ExportFormat::Json)),
            29
        );
    }
    let good = account().to_string();
    assert_eq!(
        code(&attributes(&good, &[("limit", "x")], ExportFormat::Pdf)),
        26
    );
}

#[test]
fn pdf_disabled_is_refused_before_the_store_is_read() {
    let f = fixture_with(false);
    let officer = f.enable_a();
    // No rows at all: still 501, not 204.
    let err = f
        .service
        .attributes(&officer, &account().to_string(), &[], ExportFormat::Pdf)
        .unwrap_err();
    assert!(matches!(err, AmlError::PdfDisabled));
    assert!(
        f.service
            .attributes(&officer, &account().to_string(), &[], ExportFormat::Json)
            .unwrap()
            .is_none()
    );
}

#[test]
fn pdf_reports_come_from_the_renderer() {
    let f = fixture();
    let officer = f.enable_a();
    f.file(
        account(),
        json!({"FORM_ID": "test", "FULL_NAME": "Alice Example"}),
    );
    let report = f
        .service
        .attributes(&officer, &account().to_string(), &[], ExportFormat::Pdf)
        .unwrap()
        .unwrap();
    let AttributeReport::Pdf { bytes, .. } = report else {
        panic!("asked for a PDF");
    };
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains(&account().to_string()), "{text}");
    assert!(text.contains("FULL_NAME: Alice Example"), "{text}");
    assert!(text.contains("Event 1 of 1"), "{text}");
    assert!(text.contains("submitted by the customer"), "{text}");
    // The officer who exported it, and the exchange once the server announced its URL.
    assert!(
        text.contains("Exported by AML officer: Olivia Officer"),
        "{text}"
    );
    assert!(text.contains("Exchange: (base URL not known)"), "{text}");
    f.service
        .set_exchange_url("https://exchange.example/".into());
    let Some(AttributeReport::Pdf { bytes, .. }) = f
        .service
        .attributes(&officer, &account().to_string(), &[], ExportFormat::Pdf)
        .unwrap()
    else {
        panic!("asked for a PDF");
    };
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains("Exchange: https://exchange.example/"),
        "{text}"
    );
}

// ---- registration (§2) ----

fn setup(t_s: u64, active: bool, read_only: bool, sig: &str) -> Vec<u8> {
    json!({
        "officer_pub": officer_a(),
        "officer_name": "Olivia Officer",
        "is_active": active,
        "read_only": read_only,
        "change_date": {"t_s": t_s},
        "master_sig": sig,
    })
    .to_string()
    .into_bytes()
}

const SIG_1700000000: &str = "MMNQR19C887Y6XR63RFF0Q2SH4JTY9JQSNDSPAQ10WZPX0FD2651FDNJBESXAHZJ3KNSE1XFY4HFZZA9KRVK8247BWTX1RJ96FCXG00";
const SIG_1700000100: &str = "XTAJ76J70671991VQEP38NWF5W9M4N1EWFFAY5KNT7NYEG9YAPKEBCMVD7QQTYC7T1WYVP8BZNRT49K424VSVYXCBWQK2GWSHWK102R";
const SIG_1700000200: &str = "MDJ2HRVFGM54S9EFFK4184K9MFXK006D78WNJ2H1CBEX71GRFRG7HXDR3FSKM85H665X6BZ9CH5X84HNF5ANXQ4YWFT0GGGKE89R02G";

#[test]
fn master_signed_registration_with_the_vectors() {
    let f = fixture();
    f.service
        .register_officer(&setup(1_700_000_000, true, false, SIG_1700000000))
        .unwrap();
    let stored = f.store.officer(&officer_a()).unwrap().unwrap();
    assert!(stored.is_active && !stored.read_only);
    assert_eq!(stored.master_sig.unwrap().to_string(), SIG_1700000000);
    // Replaying the same message is fine; an older one is 409/1831.
    f.service
        .register_officer(&setup(1_700_000_000, true, false, SIG_1700000000))
        .unwrap();
    f.service
        .register_officer(&setup(1_700_000_200, true, true, SIG_1700000200))
        .unwrap();
    let err = f
        .service
        .register_officer(&setup(1_700_000_100, false, false, SIG_1700000100))
        .unwrap_err();
    assert!(matches!(err, AmlError::OfficerMoreRecentPresent));
    assert_eq!(code(&err), 1831);
    let stored = f.store.officer(&officer_a()).unwrap().unwrap();
    assert!(stored.is_active && stored.read_only);
}

#[test]
fn registration_refuses_bad_signatures_and_bodies() {
    let f = fixture();
    // Signed by officer A instead of the master key; the name hashed without its NUL; a
    // valid signature over different flags.
    for sig in [
        "6FC5JGSW3ZADR74C4SB5AVKR505CVEMTVCG0D6Y9N1X881PPPZ8HB8VKTCYD1M0J8EYQBY8QQZ82T0TWS6BV2GT6NERZHHTNDEEZM20",
        "JZ6RAWW1XYB4HQTW02S3YRSP49SQG79CBHFGAMNPKHPBGDWE7ZKPWBCW6MQZSGGYFXTAAB6MGKDNNQBMMX00XVB7ZWGK29HSDKGKA2G",
    ] {
        let err = f
            .service
            .register_officer(&setup(1_700_000_000, true, false, sig))
            .unwrap_err();
        assert_eq!(code(&err), 1830);
    }
    let err = f
        .service
        .register_officer(&setup(1_700_000_000, true, true, SIG_1700000000))
        .unwrap_err();
    assert_eq!(code(&err), 1830);
    assert_eq!(
        code(&f.service.register_officer(b"{not json").unwrap_err()),
        22
    );
    // Missing members are 22, as the exchange answers them.
    assert_eq!(code(&f.service.register_officer(b"{}").unwrap_err()), 22);
    let mut body: serde_json::Value =
        serde_json::from_slice(&setup(1_700_000_000, true, false, SIG_1700000000)).unwrap();
    body["change_date"] = json!({"t_s": "never"});
    assert_eq!(
        code(
            &f.service
                .register_officer(body.to_string().as_bytes())
                .unwrap_err()
        ),
        26
    );
    body["change_date"] = json!({"t_s": -1});
    assert_eq!(
        code(
            &f.service
                .register_officer(body.to_string().as_bytes())
                .unwrap_err()
        ),
        22
    );
    assert!(f.store.officer(&officer_a()).unwrap().is_none());
}

#[test]
fn registration_uses_the_configured_master_key_only() {
    let f = fixture();
    let other_master = seed(0x60);
    let body = officer_status_bytes(&other_master);
    assert_eq!(code(&f.service.register_officer(&body).unwrap_err()), 1830);
    let body = officer_status_bytes(&master());
    f.service.register_officer(&body).unwrap();
}

fn officer_status_bytes(signer: &EddsaPrivateKey) -> Vec<u8> {
    let change = Timestamp::from_seconds(1_700_000_300).unwrap();
    let status = crate::domain::primitives::officer_status_body(
        change,
        &officer_a(),
        "Olivia Officer",
        true,
        false,
    );
    let sig = sign_purpose(
        signer,
        crate::domain::primitives::purpose::MASTER_AML_KEY,
        &status,
    );
    setup(1_700_000_300, true, false, &sig.to_string())
}

#[test]
fn operator_commands() {
    let f = fixture();
    let created = f.service.new_officer("Nina New").unwrap();
    assert_eq!(
        created.officer.officer_pub,
        created.private_key.public_key()
    );
    assert!(created.officer.is_active && !created.officer.read_only);
    let query_sig = sign_purpose(
        &created.private_key,
        crate::domain::primitives::purpose::AML_QUERY,
        &[],
    );
    let header = query_sig.to_string();
    assert!(
        f.service
            .authenticate(&created.officer.officer_pub, Some(&header))
            .is_ok()
    );
    assert!(f.service.disable_officer(&officer_a()).unwrap().is_none());
    f.enable_a();
    assert_eq!(f.service.list_officers().unwrap().len(), 2);
}

// ---- decisions (§5) ----

#[test]
fn decisions_show_default_rules_and_filters() {
    let f = fixture();
    let officer = f.enable_a();
    assert!(f.service.decisions(&officer, &[]).unwrap().is_none());
    let outcome = |investigate, rules| NewOutcome {
        h_payto: account(),
        decision_time: Timestamp::from_seconds(NOW).unwrap(),
        expiration_time: Timestamp::never(),
        properties: None,
        new_measure_name: None,
        to_investigate: investigate,
        new_rules: rules,
        decider: None,
    };
    f.store.insert_outcome(&outcome(true, None)).unwrap();
    f.store
        .insert_outcome(&outcome(false, Some(json!({"rules": ["x"]}))))
        .unwrap();
    let list = f.service.decisions(&officer, &[]).unwrap().unwrap();
    let json = serde_json::to_value(&list).unwrap();
    assert_eq!(json["records"][0]["rowid"], 2);
    assert_eq!(json["records"][0]["limits"], json!({"rules": ["x"]}));
    assert_eq!(json["records"][0]["is_active"], true);
    assert_eq!(json["records"][1]["limits"], json!({"rules": []}));
    assert_eq!(json["records"][1]["is_active"], false);
    assert!(json["records"][1].get("justification").is_none());
    assert_eq!(json["records"][1]["h_payto"], account().to_string());
    let active = f
        .service
        .decisions(&officer, &query(&[("active", "yes")]))
        .unwrap()
        .unwrap();
    assert_eq!(active.records.len(), 1);
    // yes/no/all are case-insensitive, as the exchange reads them.
    let shouted = f.service.decisions(&officer, &query(&[("active", "YES")]));
    assert_eq!(shouted.unwrap().unwrap().records.len(), 1);
    for bad in [
        ("active", "maybe"),
        ("investigation", "yess"),
        ("h_payto", "x"),
        ("limit", ""),
    ] {
        let err = f.service.decisions(&officer, &query(&[bad])).unwrap_err();
        assert_eq!(code(&err), 26, "{bad:?}");
    }
}

// ---- the access log (compliance-evidence.md §1.6) ----

#[test]
fn a_read_is_journaled_before_it_is_answered_and_fails_without_its_entry() {
    use crate::ports::journal::{Journal, JournalQuery};
    let f = fixture();
    let officer = f.enable_a();
    let row = f.file(
        account(),
        json!({"FORM_ID": "test", "FULL_NAME": "Alice Example"}),
    );
    let h = account().to_string();
    let export = f
        .service
        .read_attributes(&officer, &h, &[], ExportFormat::Json)
        .unwrap()
        .unwrap();
    assert!(export.proof.verify(
        &crate::domain::primitives::EddsaPrivateKey::from_seed([4; 32]).public_key(),
        &export.body
    ));
    let all = |f: &Fixture| {
        f.journal
            .entries(&JournalQuery {
                limit: 10,
                ..JournalQuery::default()
            })
            .unwrap()
    };
    let entries = all(&f);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, "aml.attributes_read");
    assert!(
        entries[0]
            .details
            .contains(&format!("\"rows\":[{row},{row}]"))
    );

    // Without its journal entry, a read answers no data: 500 with code 54.
    f.journal.fail_appends(true);
    let error = f
        .service
        .read_attributes(&officer, &h, &[], ExportFormat::Json)
        .unwrap_err();
    assert_eq!(code(&error), 54);
    let error = f.service.decisions(&officer, &[]).unwrap_err();
    assert_eq!(code(&error), 54);
    assert_eq!(all(&f).len(), 1);
}
