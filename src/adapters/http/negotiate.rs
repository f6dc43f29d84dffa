//! `Accept` negotiation of the AML export (exchange-aml.md §4.3): JSON unless PDF is
//! preferred. Never 406.

use crate::domain::aml::ExportFormat;

/// The format an `Accept` header asks for: the candidate (`application/json`, `*/*` and
/// `application/*` count as JSON, `application/pdf` as PDF) with the highest `q`, the first
/// listed on a tie; `q=0` excludes; nothing acceptable or no header → JSON.
pub fn export_format(accept: Option<&str>) -> ExportFormat {
    let Some(accept) = accept else {
        return ExportFormat::Json;
    };
    let mut best: Option<(f32, ExportFormat)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let format = match media.as_str() {
            "application/json" | "application/*" | "*/*" => ExportFormat::Json,
            "application/pdf" => ExportFormat::Pdf,
            _ => continue,
        };
        let quality = parts
            .filter_map(|parameter| {
                let (name, value) = parameter.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| value.trim().parse::<f32>().ok())
                    .flatten()
            })
            .next()
            .unwrap_or(1.0);
        if quality.is_nan() || quality <= 0.0 {
            continue;
        }
        if best.is_none_or(|(top, _)| quality > top) {
            best = Some((quality, format));
        }
    }
    best.map_or(ExportFormat::Json, |(_, format)| format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExportFormat::{Json, Pdf};

    proptest::proptest! {
        #[test]
        fn any_header_negotiates(accept in ".{0,80}") {
            let _ = export_format(Some(&accept));
        }
    }

    #[test]
    fn negotiation() {
        for (accept, expected) in [
            (None, Json),
            (Some(""), Json),
            (Some("application/pdf"), Pdf),
            (Some("APPLICATION/PDF"), Pdf),
            (Some("application/json"), Json),
            (Some("text/html"), Json),
            (Some("text/html, application/pdf"), Pdf),
            (Some("application/pdf;q=0"), Json),
            (Some("application/pdf;q=0.5, application/json;q=0.4"), Pdf),
            (Some("application/json;q=0.4, application/pdf;q=0.5"), Pdf),
            (Some("application/pdf, application/json"), Pdf),
            (Some("application/json, application/pdf"), Json),
            (Some("*/*, application/pdf"), Json),
            (Some("application/pdf, */*;q=0.8"), Pdf),
            (Some("*/*;q=0.1, application/pdf; q=0.2"), Pdf),
            (Some("application/*;q=1, application/pdf;q=1"), Json),
            (Some("application/pdf;q=bogus"), Pdf),
        ] {
            assert_eq!(export_format(accept), expected, "{accept:?}");
        }
    }
}
