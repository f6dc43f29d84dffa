//! `talerbox kyc trigger`: opens measures for an account, as taler-exchange-kyc-trigger does;
//! `talerbox kyc account-key`: records the key that authenticates an account's kyc-check.

use std::io::Write;
use talerbox::domain::evidence::RequirementTrigger;

use talerbox::app::{self, App};
use talerbox::config::Config;
use talerbox::domain::kyc::{MeasureSpec, VERBOTEN, customer_page_url};
use talerbox::domain::primitives::EddsaPublicKey;

/// Writes the access token, the account's `h_normalized_payto` and, when the exchange's public
/// URL can be known, the customer's KYC page URL: from the configured base URL, else from the
/// server running on the data directory, else from the configured listen address.
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
    let (app, exchange) = open_with_exchange_url(config, true)?;
    let from_config = app.urls(app.config.server.listen).exchange;
    let kyc = app.kyc_trigger_service(exchange.as_deref().unwrap_or(&from_config));
    let spec = format!("{}{}", if all { "+ " } else { "" }, measures.join(" "));
    let triggered = kyc.trigger(payto, &MeasureSpec::parse(&spec), RequirementTrigger::Cli)?;
    writeln!(out, "{}", triggered.access_token)?;
    writeln!(out, "{}", triggered.h_normalized_payto)?;
    match exchange {
        Some(exchange) => writeln!(
            out,
            "{}",
            customer_page_url(&exchange, &triggered.access_token.to_string())
        )?,
        None => eprintln!(
            "talerbox: the exchange's public URL is unknown (no server runs on this data \
             directory, [talerbox] LISTEN has port 0, and neither [exchange] BASE_URL nor \
             [talerbox] BASE_URL is set): the customer's page is EXCHANGE-BASE-URL/kyc-spa/TOKEN"
        ),
    }
    Ok(())
}

/// Records `public_key` as the key of the account of the full payto `payto` and writes the
/// account's `h_normalized_payto`. The real exchange learns this key from a "KYC auth" wire
/// transfer whose subject carries it; talerbox moves no money, so the operator records it.
pub fn account_key(
    config: Config,
    payto: &str,
    public_key: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let key: EddsaPublicKey = public_key
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("the public key must be 52 base32 characters"))?;
    let listen = config.server.listen;
    let app = App::open(config)?;
    let kyc = app.kyc_trigger_service(&app.urls(listen).exchange);
    let h_payto = kyc.record_account_key(payto, key)?;
    writeln!(out, "{h_payto}")?;
    Ok(())
}

/// Opens the installation and finds the exchange's public URL, when it can be known: the
/// configured base URL, else the one of the server running on the data directory, else the
/// configured listen address (with a note that no server runs, if `announce`). With port 0 and nothing
/// else to go on there is none: no URL is better than a wrong one.
pub fn open_with_exchange_url(
    config: Config,
    announce: bool,
) -> anyhow::Result<(App, Option<String>)> {
    let listen = config.server.listen;
    let configured = config.exchange.base_url.is_some() || config.server.public_base_url.is_some();
    let running = app::running_server(&config.server.data_dir);
    let app = App::open(config)?;
    let from_config = app.urls(listen).exchange;
    // With port 0 the address is known only to the server: no URL is better than a wrong one.
    let exchange = match (&running, configured) {
        (_, true) => Some(from_config.clone()),
        (Some(server), false) if server.exchange_url.is_some() => server.exchange_url.clone(),
        (None, false) if listen.port() != 0 => {
            if announce {
                eprintln!(
                    "talerbox: no server is running on this data directory; the URL assumes \
                 [talerbox] LISTEN = {listen}"
                );
            }
            Some(from_config.clone())
        }
        _ => None,
    };
    Ok((app, exchange))
}
