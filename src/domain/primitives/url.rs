//! URL encoding as Taler components do it.

/// Percent-encodes every byte outside `A-Za-z0-9-._~` with upper-case hex (space → `%20`),
/// as libeufin's `encodeURLParameter` and the exchange's `TALER_urlencode` do.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_bytes_stay() {
        assert_eq!(percent_encode("a-b._~Z9"), "a-b._~Z9");
        assert_eq!(
            percent_encode("http://x/kyc-proof/challenger"),
            "http%3A%2F%2Fx%2Fkyc-proof%2Fchallenger"
        );
        assert_eq!(percent_encode("Jo Doe é"), "Jo%20Doe%20%C3%A9");
    }
}
