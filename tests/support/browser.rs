//! A headless Chromium driven over WebDriver (chromedriver + fantoccini) for the browser
//! tests of the pages.
//!
//! Every test starts its own chromedriver on a free port, in its own process group, which is
//! killed when the `Browser` drops (also when the test panics). Without `/usr/bin/chromedriver`
//! a test is skipped, except under `CI`, where it fails.
//!
//! Requests and console messages come from Chrome's own logs (`goog:loggingPrefs`):
//! `requests()` lists every request the page made, with the headers and the body Chrome
//! reports (`postData`; Chrome leaves it out for very large or multipart bodies).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long `wait_for` waits for an element unless told otherwise.
pub const WAIT: Duration = Duration::from_secs(10);

/// One request the page made.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub url: String,
    pub method: String,
    pub headers: Value,
    pub body: Option<String>,
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    requests: Mutex<Vec<SeenRequest>>,
    console: Mutex<Vec<String>>,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium; `None` (after saying so) when
    /// chromedriver is not installed and `CI` is unset.
    pub async fn start() -> Option<Browser> {
        if !std::path::Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "chromium-driver is not installed, and CI must run the browser tests"
            );
            println!("skipped: chromium-driver not installed");
            return None;
        }
        let port = free_port();
        let driver = std::os::unix::process::CommandExt::process_group(
            Command::new(CHROMEDRIVER).arg(format!("--port={port}")),
            0,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            client: connect(port, &profile).await,
            driver,
            _profile: profile,
            requests: Mutex::new(Vec::new()),
            console: Mutex::new(Vec::new()),
        };
        browser.client.set_window_size(1024, 900).await.unwrap();
        browser.requests.get_mut().unwrap().clear();
        Some(browser)
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The first element matching `css`, waiting up to `WAIT` for it to appear.
    /// Clicks the first `css` element once it exists. A page that re-renders between finding
    /// and clicking makes the element stale: it is then looked up again.
    pub async fn click(&self, css: &str) {
        for _ in 0..20 {
            match self.wait_for(css).await.click().await {
                Ok(()) => return,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("clicking `{css}`: {e}"),
            }
        }
        panic!("`{css}` went stale twenty times in a row");
    }

    pub async fn wait_for(&self, css: &str) -> Element {
        self.wait_for_within(css, WAIT).await
    }

    pub async fn wait_for_within(&self, css: &str, timeout: Duration) -> Element {
        match self
            .client
            .wait()
            .at_most(timeout)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(error) => {
                let page = self.client.source().await.unwrap_or_default();
                self.screenshot(&format!("timeout-{}", sanitize(css))).await;
                let console = self.console_errors().await;
                panic!(
                    "no `{css}` within {timeout:?}: {error}\nconsole: {console:?}\npage:\n{page}"
                )
            }
        }
    }

    /// Waits until the text of the first `css` element contains `needle`; answers that text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                return text;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("timeout-{}", sanitize(needle)))
                    .await;
                panic!("`{css}` never said `{needle}`; last text: {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes a PNG of the viewport to `target/browser-artifacts/NAME.png`; answers its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Every request the page made since the browser started.
    pub async fn requests(&self) -> Vec<SeenRequest> {
        let entries = self.log("performance").await;
        let mut requests = self.requests.lock().unwrap();
        requests.extend(entries.iter().filter_map(seen_request));
        requests.clone()
    }

    /// The console's errors (and failed loads, CSP violations) since the last call.
    pub async fn console_errors(&self) -> Vec<String> {
        let entries = self.log("browser").await;
        let mut console = self.console.lock().unwrap();
        console.extend(
            entries
                .iter()
                .filter(|entry| entry["level"] == "SEVERE")
                .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned()),
        );
        std::mem::take(&mut console)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; answers its
    /// result. A returned promise is awaited.
    pub async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap()
    }

    /// Closes the session (Chromium exits); the driver stops on drop.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
    }

    async fn log(&self, kind: &'static str) -> Vec<Value> {
        match self.client.issue_cmd(GetLog(kind)).await.unwrap() {
            Value::Array(entries) => entries,
            other => panic!("unexpected {kind} log: {other}"),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

async fn connect(port: u16, profile: &tempfile::TempDir) -> Client {
    let mut capabilities = Capabilities::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    capabilities.insert(
        "goog:loggingPrefs".into(),
        json!({ "browser": "ALL", "performance": "ALL" }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let webdriver = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&webdriver)
            .await
        {
            Ok(client) => return client,
            Err(error) if Instant::now() > deadline => panic!("chromedriver: {error}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Chrome's `GET log` command (`POST /session/{id}/se/log`): the entries since the last call.
#[derive(Debug)]
struct GetLog(&'static str);

impl WebDriverCompatibleCommand for GetLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": self.0 }).to_string()),
        )
    }
}

/// A request from a performance-log entry, if it records one being sent.
fn seen_request(entry: &Value) -> Option<SeenRequest> {
    let message: Value = serde_json::from_str(entry["message"].as_str()?).ok()?;
    let message = &message["message"];
    if message["method"] != "Network.requestWillBeSent" {
        return None;
    }
    let request = &message["params"]["request"];
    Some(SeenRequest {
        url: request["url"].as_str()?.to_owned(),
        method: request["method"].as_str().unwrap_or_default().to_owned(),
        headers: request["headers"].clone(),
        body: request["postData"].as_str().map(str::to_owned),
    })
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn artifacts_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
            PathBuf::from,
        )
        .join("browser-artifacts")
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}
