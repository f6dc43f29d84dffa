//! `talerbox payto hash`: the normalised form of a payto URI and its `h_normalized_payto`.

use std::io::Write;

use talerbox::domain::primitives::Payto;

/// Writes the normalised URI, then its hash, one a line.
pub fn hash(payto: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let parsed = Payto::parse_full(payto.trim())
        .map_err(|e| anyhow::anyhow!("not a payto URI ({e}): {payto}"))?;
    writeln!(out, "{}", parsed.normalized())?;
    writeln!(out, "{}", parsed.h_normalized())?;
    Ok(())
}
