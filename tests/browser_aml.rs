//! The officer's back office in a real browser (headless Chromium over WebDriver): sign-in,
//! the case queue, an account file, decisions that reach the customer's kyc-info, the PDF,
//! a read-only, a disabled, an unregistered and a malformed key; the page's signing code
//! against the spec's vectors; and that no request ever carries the private key.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};
use talerbox::domain::primitives::{EddsaPrivateKey, Payto, base32};

use crate::offline_flow::{Site, offline_flow};
use crate::support::browser::{Browser, SeenRequest};
use crate::support::{TestServer, talerbox};

/// A FORM check with a file, besides the built-in e-mail check.
const ADDRESS_CHECK: &str = "[kyc-check-address]\nTYPE = FORM\nFORM_NAME = address_proof\n\
    DESCRIPTION = \"Show us where you live\"\nDESCRIPTION_I18N = {}\n\
    OUTPUTS = STREET_ADDRESS UTILITY_BILL_SCAN\nFALLBACK = freeze\n\n\
    [kyc-measure-address]\nCHECK_NAME = address\nPROGRAM = accept\nCONTEXT = {}\n";

/// Runs of sign-in → account file whose median the test reports.
const TIMING_RUNS: usize = 5;

/// A registered officer: public key and private key, as `aml officer new` prints them.
struct Officer {
    public: String,
    private: String,
}

fn new_officer(dir: &Path, name: &str) -> Officer {
    let (code, out, err) = talerbox(dir, &["aml", "officer", "new", "--name", name]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    Officer {
        public: lines.next().unwrap().to_owned(),
        private: lines.next().unwrap().to_owned(),
    }
}

/// Chrome's DevTools command through chromedriver: lets downloads land in a directory.
#[derive(Debug)]
struct AllowDownloads(PathBuf);

impl WebDriverCompatibleCommand for AllowDownloads {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let params = json!({"behavior": "allow", "downloadPath": self.0.display().to_string()});
        let body = json!({"cmd": "Browser.setDownloadBehavior", "params": params});
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Types `key` into the sign-in form and submits it.
async fn sign_in(browser: &Browser, key: &str) {
    let input = browser.wait_for("#key-text").await;
    input.send_keys(key).await.unwrap();
    browser
        .wait_for("#signin-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
}

async fn sign_out(browser: &Browser) {
    browser.wait_for("#sign-out").await.click().await.unwrap();
    browser.wait_for_text("#signin-title", "Sign in").await;
}

async fn click(browser: &Browser, css: &str) {
    browser.click(css).await;
}

/// Fills the decide form with `preset`, reviews and signs; answers the review's text.
async fn decide(browser: &Browser, preset: &str, justification: &str, investigate: bool) -> String {
    click(
        browser,
        &format!("#decide input[name=preset][value={preset}]"),
    )
    .await;
    let checkbox = browser.wait_for("#investigate").await;
    if checkbox.is_selected().await.unwrap() != investigate {
        checkbox.click().await.unwrap();
    }
    let field = browser.wait_for("#justification").await;
    field.clear().await.unwrap();
    field.send_keys(justification).await.unwrap();
    click(browser, "#decide button[type=submit]").await;
    let review = browser
        .wait_for_text("#review", "What your key will sign")
        .await;
    browser.screenshot(&format!("aml-review-{preset}")).await;
    click(browser, "#sign-submit").await;
    browser
        .wait_for_text("#decide-result", "Decision recorded")
        .await;
    review
}

async fn kyc_info(server: &TestServer, token: &str) -> (u16, Value) {
    let response = server.get(&format!("exchange/kyc-info/{token}")).await;
    let status = response.status().as_u16();
    let body = if status == 200 {
        response.json().await.unwrap()
    } else {
        Value::Null
    };
    (status, body)
}

/// The finished download ending in `.EXTENSION` in `dir`, waiting up to ten seconds for it.
/// The bytes of the finished `.extension` download in `dir`: Chromium may show the file under
/// its final name before it has written it, so an empty file or one still in progress
/// (`.crdownload` beside it) is waited for.
async fn downloaded(dir: &Path, extension: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        let in_progress = paths
            .iter()
            .any(|path| path.extension().is_some_and(|e| e == "crdownload"));
        let found = paths
            .iter()
            .find(|path| path.extension().is_some_and(|e| e == extension));
        if let (false, Some(path)) = (in_progress, found) {
            let bytes = std::fs::read(path).unwrap();
            if !bytes.is_empty() {
                return bytes;
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing .{extension} was downloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Asserts that no recorded request carries `private` (base32, in any case) or its bytes
/// (raw, hex, base64); answers how many requests were checked.
fn assert_key_never_sent(requests: &[SeenRequest], private: &str) -> usize {
    use data_encoding::{BASE64, BASE64URL_NOPAD, HEXLOWER};
    let seed = base32::decode(private, 32).unwrap();
    let forms = [
        private.to_uppercase(),
        private.to_lowercase(),
        HEXLOWER.encode(&seed),
        HEXLOWER.encode(&seed).to_uppercase(),
        BASE64.encode(&seed),
        BASE64URL_NOPAD.encode(&seed),
        seed.iter().map(|&b| char::from(b)).collect::<String>(),
    ];
    for request in requests {
        let text = format!(
            "{} {} {}",
            request.url,
            request.headers,
            request.body.as_deref().unwrap_or_default()
        );
        for form in &forms {
            assert!(
                !text.contains(form.as_str()),
                "a request carries the private key: {request:?}"
            );
        }
    }
    requests.len()
}

#[tokio::test]
async fn an_officer_decides_on_a_customer_in_the_back_office() {
    let server = TestServer::start_with(ADDRESS_CHECK).await;
    let dir = server.dir.path().to_owned();
    // A customer through the offline KYC flow: e-mail address validated by the challenger.
    let customer = offline_flow(&Site::new(server.base.clone(), &dir)).await;
    // Then a form with a file, as the customer's page uploads it.
    let (code, _, err) = talerbox(
        &dir,
        &["kyc", "trigger", &customer.payto, "--measure", "address"],
    );
    assert_eq!(code, 0, "{err}");
    let (status, info) = kyc_info(&server, &customer.token).await;
    assert_eq!(status, 200);
    let id = info["requirements"][0]["id"].as_str().unwrap();
    let bill = b"Electricity, November: 42 kWh";
    let uploaded = server
        .client
        .post(server.url(&format!("exchange/kyc-upload/{id}")))
        .json(
            &json!({"FORM_ID": "address_proof", "STREET_ADDRESS": "1 Main Street",
            "UTILITY_BILL_SCAN": {"filename": "bill.txt", "content_type": "text/plain",
                "data": base32::encode(bill)}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 204);
    let h_payto = Payto::parse_full(&customer.payto)
        .unwrap()
        .h_normalized()
        .to_string();
    let officer = new_officer(&dir, "Bruno Browser");
    let reader = new_officer(&dir, "Rita Reader");
    let (code, _, err) = talerbox(
        &dir,
        &[
            "aml",
            "officer",
            "add",
            "--pub",
            &reader.public,
            "--name",
            "Rita Reader",
            "--read-only",
        ],
    );
    assert_eq!(code, 0, "{err}");

    let Some(browser) = Browser::start().await else {
        return;
    };
    let downloads = tempfile::tempdir().unwrap();
    browser
        .client
        .issue_cmd(AllowDownloads(downloads.path().to_owned()))
        .await
        .unwrap();
    let page = server.url("exchange/aml-spa/");

    // First load: everything the page needs, measured by the browser itself.
    browser.goto(&page).await;
    browser.wait_for("#key-text").await;
    let sizes = browser
        .run(
            "const all = [...performance.getEntriesByType('navigation'), \
             ...performance.getEntriesByType('resource')]; \
             return {files: all.length, \
               body: all.reduce((n, e) => n + e.decodedBodySize, 0), \
               transfer: all.reduce((n, e) => n + e.transferSize, 0)};",
            vec![],
        )
        .await;
    println!("aml-spa first load: {sizes}");
    assert!(sizes["files"].as_u64().unwrap() >= 6, "{sizes}");
    assert!(sizes["body"].as_u64().unwrap() < 90_000, "{sizes}");
    browser.screenshot("aml-signin").await;

    // A malformed key is refused with a clear message, and nothing is signed.
    sign_in(&browser, "not-an-officer-key").await;
    browser
        .wait_for_text("#signin-error", "This is not an officer private key")
        .await;
    browser.screenshot("aml-wrong-key").await;

    // A well-formed key nobody registered: the page names the operator's command.
    let stranger = EddsaPrivateKey::from_seed([7; 32]);
    sign_in(&browser, &base32::encode(&[7; 32])).await;
    let stranger_pub = stranger.public_key().to_string();
    browser
        .wait_for_text(
            "#register-command",
            &format!("talerbox aml officer add --pub {stranger_pub}"),
        )
        .await;
    browser
        .wait_for_text("#officer-state", "not registered")
        .await;
    browser.screenshot("aml-unregistered").await;
    sign_out(&browser).await;

    // The officer signs in; the customer of the offline flow is in the queue.
    sign_in(&browser, &officer.private).await;
    browser.wait_for_text("#officer-state", "active").await;
    browser.wait_for_text("#officer-pub", &officer.public).await;
    browser
        .wait_for_text("#queue-activity", &customer.payto)
        .await;
    browser.screenshot("aml-queue").await;

    // Searching by payto URI hashes it in the page, exactly as the exchange does.
    let search = browser.wait_for("#search").await;
    search
        .send_keys("payto://x-taler-bank/LOCALHOST/alice")
        .await
        .unwrap();
    click(&browser, "#search-form button").await;
    browser.wait_for_text("#search-note", &h_payto).await;
    click(&browser, "#search-note a").await;

    // The account file: the address the challenger validated, not frozen.
    browser
        .wait_for_text("#attributes", "alice@example.com")
        .await;
    browser
        .wait_for_text("#attributes", "validated by the challenger")
        .await;
    browser.wait_for_text("#account-state", "Not frozen").await;
    // The access log: this very read was journaled before the file was answered.
    let log = browser
        .wait_for_text("#access-log", "attributes read")
        .await;
    assert!(log.contains("you"), "{log}");
    assert!(log.contains("attributes stored"), "{log}");
    browser.screenshot("aml-account").await;

    // The form's fields under the form's labels; its file downloads as uploaded.
    browser
        .wait_for_text("#attributes", "\"Show us where you live\" (address_proof)")
        .await;
    browser.wait_for_text("#attributes", "Street address").await;
    browser
        .wait_for_text("#attributes", "Utility bill scan")
        .await;
    browser
        .run(
            "document.getElementById('attributes').scrollIntoView();",
            vec![],
        )
        .await;
    browser.screenshot("aml-attributes").await;
    click(&browser, "#attributes a.file").await;
    assert_eq!(downloaded(downloads.path(), "txt").await, bill);

    // The PDF export downloads a PDF.
    click(&browser, "#pdf").await;
    let pdf = downloaded(downloads.path(), "pdf").await;
    assert!(pdf.starts_with(b"%PDF-1."), "not a PDF");
    assert!(pdf.trim_ascii_end().ends_with(b"%%EOF"), "not a whole PDF");

    // Freeze: the review shows the canonical rules; kyc-info tells the customer.
    assert_eq!(kyc_info(&server, &customer.token).await.0, 204);
    let review = decide(&browser, "freeze", "Structuring suspected", true).await;
    assert!(review.contains("yes (flag 1)"), "{review}");
    assert!(
        review.contains(r#""operation_type":"WITHDRAW","threshold":"KUDOS:0""#),
        "{review}"
    );
    browser.wait_for_text("#account-state", "Frozen").await;
    browser.run("window.scrollTo(0, 0);", vec![]).await;
    browser.screenshot("aml-frozen").await;
    // The README's picture (docs/screenshots/aml-back-office.png), at a small size.
    browser.client.set_window_size(760, 560).await.unwrap();
    browser.screenshot("aml-readme").await;
    browser.client.set_window_size(1024, 900).await.unwrap();
    let (status, info) = kyc_info(&server, &customer.token).await;
    assert_eq!(status, 200);
    assert_eq!(info["requirements"][0]["form"], "INFO", "{info}");
    assert_eq!(
        info["requirements"][0]["description"], "Your account is under review",
        "{info}"
    );

    // The frozen account heads the queue, under investigation.
    browser.run("location.hash = '#/queue';", vec![]).await;
    browser
        .wait_for_text("#queue-investigation", &h_payto)
        .await;
    browser
        .run(&format!("location.hash = '#/account/{h_payto}';"), vec![])
        .await;

    // Lift it: back to the default rules, nothing left for the customer.
    decide(&browser, "default", "Cleared after review", false).await;
    browser.wait_for_text("#account-state", "Not frozen").await;
    assert_eq!(kyc_info(&server, &customer.token).await.0, 204);
    browser
        .wait_for_text("#account", "Structuring suspected")
        .await;

    // Statistics: the events the two decisions counted, drawn as a chart.
    browser.run("location.hash = '#/stats';", vec![]).await;
    browser.wait_for("#stats-chart svg rect").await;
    browser
        .wait_for_text("#stats-totals", "aml-freeze: 1, aml-default-rules: 1")
        .await;
    browser.screenshot("aml-stats").await;
    sign_out(&browser).await;

    // A read-only officer reads the file but cannot decide, and is told why.
    sign_in(&browser, &reader.private).await;
    browser.wait_for_text("#officer-state", "read-only").await;
    browser
        .run(&format!("location.hash = '#/account/{h_payto}';"), vec![])
        .await;
    browser
        .wait_for_text("#read-only-note", "registered read-only")
        .await;
    let disabled = browser
        .run(
            "return document.querySelector('#decide fieldset').disabled \
             && document.querySelector('#decide button[type=submit]').matches(':disabled');",
            vec![],
        )
        .await;
    assert_eq!(disabled, true);
    browser.screenshot("aml-read-only").await;
    sign_out(&browser).await;

    // A disabled officer is told so.
    let (code, _, err) = talerbox(&dir, &["aml", "officer", "disable", &reader.public]);
    assert_eq!(code, 0, "{err}");
    sign_in(&browser, &reader.private).await;
    browser.wait_for_text("#officer-state", "disabled").await;
    sign_out(&browser).await;

    // Time from sign-in to a rendered account file, for an officer opening a link to it.
    let mut wall = Vec::new();
    let mut in_page = Vec::new();
    for _ in 0..TIMING_RUNS {
        // A fresh load each time (the key is kept for the tab only, so it is asked again).
        browser.goto("about:blank").await;
        browser.goto(&format!("{page}#/account/{h_payto}")).await;
        let input = browser.wait_for("#key-text").await;
        input.send_keys(&officer.private).await.unwrap();
        let button = browser.wait_for("#signin-form button[type=submit]").await;
        let started = Instant::now();
        button.click().await.unwrap();
        browser
            .wait_for_text("#attributes", "alice@example.com")
            .await;
        wall.push(started.elapsed().as_secs_f64() * 1000.0);
        let measured = browser
            .run(
                "return performance.measure('file', 'aml:sign-in', 'aml:account-rendered').duration;",
                vec![],
            )
            .await;
        in_page.push(measured.as_f64().unwrap());
    }
    println!(
        "sign-in to account file: median {:.0} ms in the page, {:.0} ms seen by the test \
         ({TIMING_RUNS} runs: {in_page:.0?} / {wall:.0?})",
        median(in_page.clone()),
        median(wall.clone())
    );
    assert!(median(wall) < 5_000.0, "far too slow");

    // "Remember on this device" keeps a key that signs but cannot be read back.
    sign_out(&browser).await;
    click(&browser, "#remember").await;
    sign_in(&browser, &officer.private).await;
    browser.wait_for_text("#officer-state", "active").await;
    browser.goto("about:blank").await;
    browser.goto(&page).await;
    browser.wait_for_text("#officer-state", "active").await;
    let stored = browser
        .run(
            "return new Promise((resolve, reject) => { \
               const open = indexedDB.open('talerbox-aml'); \
               open.onerror = () => reject(open.error); \
               open.onsuccess = () => { \
                 const get = open.result.transaction('officer').objectStore('officer').get('current'); \
                 get.onsuccess = async () => { \
                   const key = get.result.key; \
                   const exported = await crypto.subtle.exportKey('pkcs8', key).then(() => true, () => false); \
                   open.result.close(); \
                   resolve({extractable: key.extractable, exported, publicKey: get.result.publicKey}); \
                 }; \
               }; \
             });",
            vec![],
        )
        .await;
    assert_eq!(
        stored,
        json!({"extractable": false, "exported": false, "publicKey": officer.public})
    );
    // Signing out forgets it.
    sign_out(&browser).await;
    browser.goto("about:blank").await;
    browser.goto(&page).await;
    browser.wait_for_text("#signin-title", "Sign in").await;
    assert!(
        !browser
            .wait_for("#officer")
            .await
            .is_displayed()
            .await
            .unwrap()
    );

    // No request ever carried a private key; the recorder did see the signed traffic.
    let requests = browser.requests().await;
    assert!(
        requests.iter().any(|r| r
            .headers
            .to_string()
            .contains("Taler-AML-Officer-Signature")),
        "no signed read recorded"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "POST"
                && r.body.as_deref().is_some_and(|b| b.contains("officer_sig"))),
        "no decision recorded"
    );
    for private in [&officer.private, &reader.private] {
        assert_key_never_sent(&requests, private);
    }
    assert_key_never_sent(&requests, &base32::encode(&[7; 32]));
    // Failed signed reads and the state probe show as failed loads, never as script errors.
    let errors: Vec<_> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|e| !e.contains("Failed to load resource"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    browser.close().await;
    server.stop().await;
}

/// The page's signing module, run inside the browser, reproduces the spec's vectors.
#[tokio::test]
async fn the_page_signs_like_the_spec_vectors() {
    let server = TestServer::start().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.goto(&server.url("exchange/aml-spa/")).await;
    browser.wait_for("#key-text").await;
    let got = browser
        .run(include_str!("browser_aml_vectors.js"), vec![])
        .await;
    assert!(got.get("error").is_none(), "{got}");
    let expected: &[(&str, &str)] = &[
        ("base32 \"\"", ""),
        ("base32 \"f\"", "CR"),
        ("base32 \"fo\"", "CSQG"),
        ("base32 \"foo\"", "CSQPY"),
        ("base32 \"foob\"", "CSQPYRG"),
        ("base32 \"fooba\"", "CSQPYRK1"),
        ("base32 \"foobar\"", "CSQPYRK1E8"),
        ("base32 00", "00"),
        ("base32 ff", "ZW"),
        (
            "base32 00..1f",
            "000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG",
        ),
        ("decode csqpyrk1e8", "666f6f626172"),
        ("decode CSQPYRKLE8", "666f6f626172"),
        ("decode ZW0", "error"),
        ("decode Z*", "error"),
        ("decode zz", "ff"),
        ("decode uu", "de"),
        (
            "sha512 empty",
            "SY1Y2DBYXYWBVWAM518DCVC00ZB21S051DBHBQ43YJMJ3MVCX774FM6H7HERBWNGZY1HHMM7FVP2YRXS66YMEGBTG6JKGCKTZ4KXMFG",
        ),
        (
            "sha512 abc",
            "VPQKB8CKC5XBNK21ED4TW821649EDYJEH6MQX8GAKVQECJTNTED234MS58KMZGD86TX3R8X3ZVNVTHAD8GHP8F781RN9NJAFMN6A97R",
        ),
        (
            "officer A pub",
            "0EGGFFZKSR8BW7BGVMCEEJY0K5KY9NHGKEJGTQRXVJ3684JN66W0",
        ),
        (
            "officer B pub",
            "4N1VJBZH15AH2HVAVJ1PKPVDVJ9KCSD135WDV8A09VGGCV59APEG",
        ),
        (
            "officer A query",
            "6Z4JPM58WFZ8AHWSM9K5DCNXG537ZYB8Q4D7WXHA3JDP6SHECV9SZGKJ0TZRS80KT8PRT7223SGMJDKKG7SJJM31WZCK5FN4ZATCA20",
        ),
        (
            "officer B query",
            "0GZVFEHZR6XV173F0Q8EJPBKN2ZH8K9PC4Y6N75C094Q36J0SJ2J7BH4P012E581TPQH4ANFAJFHVS25WSWSAJ0EC0QDJP0R1MV4408",
        ),
        ("officer A key is extractable", "false"),
        (
            "canonical J4 hex",
            "7b225a223a5b5d2c2261223a5b302c2d312c747275652c66616c73652c6e756c6c5d2c227a223a225c75303030315c75303031667f2fc3a9e282ac222c22c3a9223a7b7d2c22efac81223a312c22f09f9880223a327d",
        ),
        (
            "json hash {}",
            "R2ZV38GDA2PJ7W14K1AD0F3HRNHP9HQVV60QZ43V6D9D2JRTTXV9WC3YZKEDE5XT32WXPV94SW38QFW32QVXV3D1QW6VEQWY2ZGJYR0",
        ),
        (
            "json hash J4",
            "M2WJ5PCCGXT91ESCX4Z6BCEVXJ9ZNQDVFMY1EYNMG5XQY1NNWBKP8Z75J7XJRQSP9HPBYVARH7EWGH3JSX69RXW0HBQD7SBQCE5KZ68",
        ),
        ("canonical rejects 0.5", "refused"),
        (
            "D1 properties hash",
            "ZWE4XY1YG0V61FWV7FQ9BQ2896XE68DA5DN83R09D82CGHS8Z3J6HFR10Z12K6PCS0SAMNHATMCD8HWFAHST966KK341VTJGRCTWVY0",
        ),
        (
            "D1 new_rules hash",
            "C93F96B684HT9WJE2JKRY2BQR70BZPSTDE3VZWMRWM4GG7WZYSC9AJFR3XWZ5KSFVJB3ADRF446MMGXNKE49W6QV22GEMQ9XPCA9020",
        ),
        (
            "D1 block",
            concat!(
                "000001380000054600060a24181e400050846033eae8af991a45870e51ff6b5b",
                "55ec6520267f1900b02dffdf6e53b0cf2eda7e0a258b5abd0daeed3e84bb698e",
                "92be9c61eb22ba7030c7bab1dbdf4bd41c698073bcfa53f150ae35b6d0777536",
                "662477babaeaec59d8550848c7b0eb11ff1c4ef83e803660bf9b3bee95dc4849",
                "bae321aa2b6a81e0096a04c84728f8e468bf0107c2299accc832aa562ad518d4",
                "478f5473a498d398c81dea50c335cdf86246f499664123a4f24e14a78f0977c1",
                "c0bfdb3a6b87bff298e509081f9ff6589549f81f79f2cf2fdc9635370f210d4a",
                "43b59b889e1afb10a0ea5d3db3149008",
                "00000000000000000000000000000000000000000000000000000000000000000",
                "000000000000000000000000000000000000000000000000000000000000000",
                "0000000000000001",
            ),
        ),
        (
            "D1 officer_sig",
            "R9YQ3302WER8QDZNWQW88C5240Z923FR52QVNHJ1DA210DPHBE5BECQGYBJ1EEHW54JY0JZX86XQ077PTT5BK7YP20Y2W17Q5F2N40G",
        ),
        (
            "D2 new_rules hash",
            "RDGK0HCV6CFWY0XPCD5Y05JCT2WE8G1C23CXTENM7VWGXNK607JSSNRZ1R83JPV87N0MBS6XVSW3EASM5R6KDCSD2WN1ZSNC14X8NB0",
        ),
        (
            "D2 officer_sig",
            "33RW98T7A5TXD8YVK29ZHHM1Z06R8P9E2ZQ6AN8PG6A38HMYYHAP6R2DY0757A5MFM3MPYMA6WBX1FNC8NXBY3QRKW32319YGK24W0G",
        ),
        (
            "payto payto://iban/DE89370400440532013000?receiver-name=Alice",
            "payto://iban/DE89370400440532013000 A2260CZAX2QSJ6J5GW753ZVBBDAYRS904SZHJ05G5QZXYVJKP37G",
        ),
        (
            "payto PAYTO://IBAN/COBADEFFXXX/de89370400440532013000?receiver-name=A",
            "payto://iban/DE89370400440532013000 A2260CZAX2QSJ6J5GW753ZVBBDAYRS904SZHJ05G5QZXYVJKP37G",
        ),
        (
            "payto payto://x-taler-bank/Bank.Example.COM/Alice?receiver-name=Alice%20A",
            "payto://x-taler-bank/bank.example.com/Alice QXVV9KF4PZA3J4AP2016GFTWC3N3M0BPBAM269A0Z3BVSVBAVB50",
        ),
        (
            "payto payto://x-taler-bank/localhost:8080/alice?receiver-name=a",
            "payto://x-taler-bank/localhost:8080/alice F8YT6T7NJN3M1TEM3NC0DWKPRZB3MEYW5NK9S9SBEP7JR7C4ERS0",
        ),
        (
            "payto payto://iban/CH9300762011623852957?receiver-name=B",
            "payto://iban/CH9300762011623852957 R9ZC8S4YS72JWHDNTH8F15V4M2X14XH1RC53A80EQ9AH6195K6K0",
        ),
        (
            "payto payto://taler-reserve/exchange.example.com/000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG",
            "payto://taler-reserve/exchange.example.com/000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG YW06MB5P8DNNQ4N47T5V9EBYFXVHASJMFY3CHRH98K1AS3VD3XS0",
        ),
        ("payto payto://iban/DE89370400440532013001", "invalid"),
        ("payto payto://bitcoin/bc1qxyz", "invalid"),
    ];
    for (name, value) in expected {
        assert_eq!(got[*name], *value, "{name}");
    }
    let names = got.as_object().unwrap().len();
    assert_eq!(names, expected.len(), "{got}");
    browser.close().await;
    server.stop().await;
}

/// The page and its files are served under the strict policy (no browser needed).
#[tokio::test]
async fn the_back_office_is_served_under_a_strict_policy() {
    let server = TestServer::start().await;
    for path in [
        "exchange/aml-spa/",
        "exchange/aml-spa/app.js",
        "exchange/aml-spa/crypto.js",
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(policy.contains("default-src 'self'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
    }
    let page = server.get("exchange/aml-spa/").await.text().await.unwrap();
    assert!(page.contains("<html lang=\"en\">"), "{page}");
    assert!(!page.contains("{{exchange}}"), "{page}");
    assert_eq!(
        server.get("exchange/aml-spa/nothing.js").await.status(),
        404
    );
    server.stop().await;
}
