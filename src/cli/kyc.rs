//! `talerbox kyc trigger`: opens measures for an account, as taler-exchange-kyc-trigger does.

use std::io::Write;

use talerbox::app::App;
use talerbox::config::Config;
use talerbox::domain::kyc::{MeasureSpec, VERBOTEN};

/// Writes the access token, the account's `h_normalized_payto` and, when the exchange's public
/// URL can be known from the configuration, the customer's kyc-info URL.
pub fn trigger(
    config: Config,
    payto: &str,
    measures: &[String],
    all: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let known = &config.kyc.rules.measures;
    for name in measures {
        let configured = known.keys().any(|k| k.eq_ignore_ascii_case(name));
        if !configured && !name.eq_ignore_ascii_case(VERBOTEN) {
            let valid: Vec<&str> = known.keys().map(String::as_str).collect();
            anyhow::bail!(
                "no measure {name:?} is configured; the measures are: {}",
                valid.join(", ")
            );
        }
    }
    let listen = config.server.listen;
    // With port 0 the server's address is known only to the server: no URL is better than
    // a wrong one.
    let url_known = listen.port() != 0
        || config.exchange.base_url.is_some()
        || config.server.public_base_url.is_some();
    let app = App::open(config)?;
    let exchange = app.urls(listen).exchange;
    let kyc = app.kyc_trigger_service(&exchange);
    let spec = format!("{}{}", if all { "+ " } else { "" }, measures.join(" "));
    let triggered = kyc.trigger(payto, &MeasureSpec::parse(&spec))?;
    writeln!(out, "{}", triggered.access_token)?;
    writeln!(out, "{}", triggered.h_normalized_payto)?;
    if url_known {
        writeln!(out, "{exchange}kyc-info/{}", triggered.access_token)?;
    } else {
        eprintln!(
            "talerbox: the exchange's public URL is unknown ([talerbox] LISTEN has port 0 and \
             neither [exchange] BASE_URL nor [talerbox] BASE_URL is set): the customer's page \
             is EXCHANGE-BASE-URL/kyc-info/TOKEN"
        );
    }
    Ok(())
}
