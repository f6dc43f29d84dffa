//! Starts talerbox in-process on a free port with a temporary data directory, reads the
//! three components' `/config`, and shuts the server down again.
//!
//! Run: `cargo run --example walkthrough`

use talerbox::app::{self, App};
use talerbox::config::{Config, Overrides};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let overrides = Overrides {
        listen: None,
        data_dir: Some(data.path().to_owned()),
    };
    let app = App::open(Config::load(None, &overrides)?)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app::serve(&app, listener, async {
            let _ = stopped.await;
        })
        .await
    });

    for component in ["bank", "exchange", "challenger"] {
        let config: serde_json::Value = reqwest::get(format!("{base}{component}/config"))
            .await?
            .json()
            .await?;
        println!("{component}: {} {}", config["name"], config["version"]);
    }

    let _ = stop.send(());
    server.await??;
    Ok(())
}
