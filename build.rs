//! Generates `ErrorCode` from `data/taler-error-codes.tsv` (GANA registry snapshot), so the
//! enum can never drift from the table it is copied from.

use std::fmt::Write as _;
use std::path::PathBuf;

const TSV: &str = "data/taler-error-codes.tsv";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed={TSV}");
    let table = std::fs::read_to_string(TSV)?;
    let mut rows = Vec::new();
    for (index, line) in table.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [code, name, status] = fields[..] else {
            return Err(format!("{TSV}:{}: expected 3 tab-separated fields", index + 1).into());
        };
        let code: u32 = code.parse()?;
        let status: u16 = status.parse()?;
        let short = name
            .strip_prefix("TALER_EC_")
            .ok_or_else(|| format!("{TSV}:{}: name without TALER_EC_ prefix", index + 1))?;
        rows.push((code, short.to_owned(), camel_case(short), status));
    }

    let mut out = String::new();
    writeln!(
        out,
        "/// GNU Taler error codes (GANA), generated from `{TSV}`."
    )?;
    writeln!(out, "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]")?;
    writeln!(out, "#[non_exhaustive]")?;
    writeln!(out, "pub enum ErrorCode {{")?;
    for (code, short, variant, _) in &rows {
        writeln!(out, "    /// `TALER_EC_{short}` ({code})")?;
        writeln!(out, "    {variant} = {code},")?;
    }
    writeln!(out, "}}\n")?;
    writeln!(out, "impl ErrorCode {{")?;
    writeln!(out, "    /// Every code, in table order.")?;
    writeln!(out, "    pub const ALL: &'static [ErrorCode] = &[")?;
    for (_, _, variant, _) in &rows {
        writeln!(out, "        ErrorCode::{variant},")?;
    }
    writeln!(out, "    ];\n")?;
    writeln!(
        out,
        "    /// The name without its `TALER_EC_` prefix, e.g. `GENERIC_JSON_INVALID`."
    )?;
    writeln!(out, "    pub const fn short_name(self) -> &'static str {{")?;
    writeln!(out, "        match self {{")?;
    for (_, short, variant, _) in &rows {
        writeln!(out, "            ErrorCode::{variant} => \"{short}\",")?;
    }
    writeln!(out, "        }}\n    }}\n")?;
    writeln!(
        out,
        "    /// The registry's HTTP status; 0 where the registry gives none."
    )?;
    writeln!(out, "    pub const fn registry_http_status(self) -> u16 {{")?;
    writeln!(out, "        match self {{")?;
    for (_, _, variant, status) in &rows {
        writeln!(out, "            ErrorCode::{variant} => {status},")?;
    }
    writeln!(out, "        }}\n    }}\n")?;
    writeln!(out, "    /// Looks a code up by its number.")?;
    writeln!(
        out,
        "    pub const fn from_number(number: u32) -> Option<ErrorCode> {{"
    )?;
    writeln!(out, "        match number {{")?;
    for (code, _, variant, _) in &rows {
        writeln!(out, "            {code} => Some(ErrorCode::{variant}),")?;
    }
    writeln!(out, "            _ => None,\n        }}\n    }}\n}}")?;

    let path = PathBuf::from(std::env::var("OUT_DIR")?).join("error_codes.rs");
    std::fs::write(path, out)?;
    Ok(())
}

/// `GENERIC_JSON_INVALID` -> `GenericJsonInvalid`.
fn camel_case(short: &str) -> String {
    short
        .split('_')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let mut chars = lower.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}
