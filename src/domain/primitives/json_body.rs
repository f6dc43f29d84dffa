//! The one rule for JSON request bodies: every Taler request body is a JSON object.
//!
//! serde's derived structs also accept the sequence form (`["alice", "pw"]`) and a
//! `serde_json::Value` accepts any scalar; a body that is not an object is refused here,
//! before any typed decoding, so that every decoder shares the same answer.

use serde::de::{DeserializeOwned, Error as _};

/// Decodes a request body that must be a JSON object (surrounding whitespace allowed).
pub fn from_object_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    match first {
        Some(b'{') => serde_json::from_slice(body),
        Some(_) => Err(serde_json::Error::custom("expected a JSON object")),
        None => Err(serde_json::Error::custom(
            "expected a JSON object, got an empty body",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Login {
        username: String,
        password: String,
    }

    #[test]
    fn objects_decode() {
        let login: Login =
            from_object_slice(b" {\"username\":\"a\",\"password\":\"b\"}\n").unwrap();
        assert_eq!(login.username, "a");
        assert_eq!(login.password, "b");
    }

    #[test]
    fn the_sequence_form_of_a_struct_is_refused() {
        assert!(serde_json::from_slice::<Login>(b"[\"a\",\"b\"]").is_ok());
        assert!(from_object_slice::<Login>(b"[\"a\",\"b\"]").is_err());
    }

    #[test]
    fn scalars_and_empty_bodies_are_refused_even_as_values() {
        for body in [&b"1"[..], b"\"x\"", b"null", b"true", b"[]", b"", b"  "] {
            assert!(
                from_object_slice::<serde_json::Value>(body).is_err(),
                "{body:?}"
            );
        }
        assert!(from_object_slice::<serde_json::Value>(b"\t{}").is_ok());
    }
}
