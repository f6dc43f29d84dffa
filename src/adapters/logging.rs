//! The log filter of `-L LEVEL` / `RUST_LOG`, with the targets that would log secrets capped.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;

/// Log targets whose debug and trace output dumps raw HTTP traffic: the OAuth2 client's token
/// request carries the client secret and the authorization code, its responses the access
/// token and the person's address. They log warnings and errors only, whatever the level.
const RAW_TRAFFIC_TARGETS: [&str; 2] = ["ureq", "ureq_proto"];

/// `RUST_LOG` if set and valid, else `level`, else `info`; raw-traffic targets capped at warn.
pub fn filter(level: &str) -> EnvFilter {
    capped(
        EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(level))
            .unwrap_or_else(|_| EnvFilter::new("info")),
    )
}

/// `filter` with the raw-traffic targets capped, also where it names them itself.
fn capped(mut filter: EnvFilter) -> EnvFilter {
    for target in RAW_TRAFFIC_TARGETS {
        if let Ok(directive) = format!("{target}=warn").parse::<Directive>() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;
    use tracing_subscriber::layer::SubscriberExt as _;

    /// Whether `spec`, capped, lets through (ureq_proto trace, ureq_proto warn, own trace).
    fn passes(spec: &str) -> (bool, bool, bool) {
        let subscriber = tracing_subscriber::registry().with(capped(EnvFilter::new(spec)));
        tracing::subscriber::with_default(subscriber, || {
            (
                tracing::enabled!(target: "ureq_proto::util", Level::TRACE),
                tracing::enabled!(target: "ureq_proto::util", Level::WARN),
                tracing::enabled!(target: "talerbox::app", Level::TRACE),
            )
        })
    }

    #[test]
    fn raw_traffic_is_never_traced_even_when_asked_for() {
        for spec in ["trace", "trace,ureq_proto=trace,ureq=trace"] {
            assert_eq!(passes(spec), (false, true, true), "{spec}");
        }
    }
}
