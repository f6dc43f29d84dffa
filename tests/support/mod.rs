//! A real talerbox server on port 0 and a temporary data directory.

pub mod browser;
pub mod process;

use std::path::{Path, PathBuf};

use std::sync::Arc;

use talerbox::app::{self, App, StartOptions};
use talerbox::config::{Config, Overrides};
use talerbox::domain::aml::AmlService;
use tokio::sync::oneshot;

pub mod pdf;
pub mod postgres;

/// The admin password every test server starts with.
pub const ADMIN_PASSWORD: &str = "admin-password";

const CHEAP_HASHING: &str =
    "[libeufin-bank]\nPASSWORD_HASH_MEMORY_KIB = 64\nPASSWORD_HASH_ITERATIONS = 1\n";

pub struct TestServer {
    /// `http://127.0.0.1:PORT/`
    pub base: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    /// The AML service of the running server (to file attribute rows as KYC will).
    pub aml: Arc<AmlService>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The PostgreSQL schema of a server on that backend (dropped with the server).
    _schema: Option<postgres::Schema>,
}

/// `TALERBOX_TEST_BACKEND=postgres` runs the servers of the black-box tests on a fresh
/// PostgreSQL schema each (of the cluster `TALERBOX_TEST_PG` names) instead of SQLite.
fn postgres_backend() -> bool {
    std::env::var("TALERBOX_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with("").await
    }

    /// Starts a server whose configuration file holds `extra` on top of the defaults.
    pub async fn start_with(extra: &str) -> TestServer {
        TestServer::start_in(tempfile::tempdir().unwrap(), extra, StartOptions::default()).await
    }

    /// Starts a server on `dir` (which may hold the data of an earlier server).
    pub async fn start_in(
        dir: tempfile::TempDir,
        extra: &str,
        options: StartOptions,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        // Cheap password hashing keeps the tests fast; the defaults are tested elsewhere.
        let mut text = format!("{CHEAP_HASHING}{extra}");
        let schema = if postgres_backend() {
            let schema = postgres::Schema::fresh("PostgreSQL backend")
                .unwrap_or_else(|| panic!("TALERBOX_TEST_BACKEND=postgres needs TALERBOX_TEST_PG"));
            // Appended last, so these win over the test's own [talerbox] lines.
            text.push_str(&format!(
                "\n[talerbox]\nDATABASE = {}\nBASE_URL = {base}\n",
                schema.uri()
            ));
            Some(schema)
        } else {
            None
        };
        let config = load_config(dir.path(), &text);
        // Stores block: opened off the test's runtime (PostgreSQL's client runs its own).
        let app = tokio::task::spawn_blocking(move || {
            let app = App::open_with(config, options).unwrap();
            app.accounts.set_password("admin", ADMIN_PASSWORD).unwrap();
            app
        })
        .await
        .unwrap();
        let aml = Arc::clone(&app.aml);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app::serve(&app, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            base,
            dir,
            client: reqwest::Client::new(),
            aml,
            stop: Some(stop),
            task: Some(task),
            _schema: schema,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Stops the server gracefully and waits until it has finished.
    pub async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Stops the server and hands back its directory, for a server started on it later.
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        self.dir
    }
}

/// Writes `extra` as the configuration file in `dir` and loads it with `dir/data` as data dir.
pub fn load_config(dir: &Path, extra: &str) -> Config {
    let file = config_file(dir, extra);
    let overrides = Overrides {
        listen: None,
        data_dir: Some(dir.join("data")),
    };
    Config::load(Some(&file), &overrides).unwrap()
}

pub fn config_file(dir: &Path, extra: &str) -> PathBuf {
    let file = dir.join("talerbox.conf");
    std::fs::write(&file, extra).unwrap();
    file
}

/// Asserts a Taler error response: status, numeric `code`, and a JSON body.
pub async fn assert_error(
    response: reqwest::Response,
    status: u16,
    code: u64,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["hint"].is_string(), "{body}");
    body
}

/// Runs the `talerbox` binary on the configuration file and data directory of a test
/// server's directory `dir`; answers the exit code, standard output and standard error.
pub fn talerbox(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_talerbox"))
        .arg("-c")
        .arg(dir.join("talerbox.conf"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// The PIN in the newest message of the challenger's outbox under a test server's directory
/// `dir`: the message's only run of 8 or more digits.
pub fn outbox_pin(dir: &Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("data/outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let message = std::fs::read_to_string(files.last().unwrap()).unwrap();
    let runs: Vec<&str> = message
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() >= 8)
        .collect();
    assert_eq!(runs.len(), 1, "{message}");
    runs[0].to_owned()
}

/// Opens the personal-data measure for `payto` through the exchange's admin trigger (token
/// `admin`) and uploads the form with `full_name` for it: the trigger's answer (access token,
/// `h_normalized_payto`, …) and the upload's status. `Err` when the server went away.
pub async fn kyc_form_upload(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    payto: &str,
    full_name: &str,
) -> Result<(serde_json::Value, u16), reqwest::Error> {
    let opened: serde_json::Value = http
        .post(format!("{base}exchange/admin/kyc-trigger"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"payto_uri": payto, "measures": "personal"}))
        .send()
        .await?
        .json()
        .await?;
    let token = opened["access_token"].as_str().unwrap_or_default();
    let info: serde_json::Value = http
        .get(format!("{base}exchange/kyc-info/{token}"))
        .send()
        .await?
        .json()
        .await?;
    let id = info["requirements"][0]["id"].as_str().unwrap();
    let uploaded = http
        .post(format!("{base}exchange/kyc-upload/{id}"))
        .json(&serde_json::json!({"FORM_ID": "full_name_and_birthdate",
            "FULL_NAME": full_name, "DATE_OF_BIRTH": "1990-01-31"}))
        .send()
        .await?;
    Ok((opened, uploaded.status().as_u16()))
}
