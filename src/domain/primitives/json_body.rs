//! The one rule for JSON request bodies: every Taler request body is a JSON object.
//!
//! serde's derived structs also accept the sequence form (`["alice", "pw"]`) and a
//! `serde_json::Value` accepts any scalar; a body that is not an object is refused here,
//! before any typed decoding, and a struct nested anywhere in it must be an object too
//! (`strict`), so that every decoder shares the same answer.

mod strict;

use serde::de::{DeserializeOwned, Error as _};

/// Decodes a request body that must be a JSON object (surrounding whitespace allowed).
pub fn from_object_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    match first {
        Some(b'{') => {
            let mut json = serde_json::Deserializer::from_slice(body);
            let value = T::deserialize(strict::Strict(&mut json))?;
            json.end()?;
            Ok(value)
        }
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

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Contact {
        email: String,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    enum Channel {
        Mail { address: String },
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Nested {
        contact: Option<Contact>,
        #[serde(default)]
        more: Vec<Contact>,
        #[serde(default)]
        channel: Option<Channel>,
        #[serde(default)]
        extra: Option<serde_json::Value>,
    }

    #[test]
    fn nested_structs_must_be_objects_too() {
        let fine: Nested = from_object_slice(
            br#"{"contact":{"email":"a"},"more":[{"email":"b"}],
                "channel":{"Mail":{"address":"c"}},"extra":[1,{"x":[2]}]}"#,
        )
        .unwrap();
        assert_eq!(fine.more, [Contact { email: "b".into() }]);
        assert_eq!(fine.extra, Some(serde_json::json!([1, {"x": [2]}])));
        for body in [
            &br#"{"contact":["a"]}"#[..],
            br#"{"contact":null,"more":[["b"]]}"#,
            br#"{"contact":null,"channel":{"Mail":["c"]}}"#,
        ] {
            // serde alone takes the sequence form of each of these.
            assert!(serde_json::from_slice::<Nested>(body).is_ok(), "{body:?}");
            let error = from_object_slice::<Nested>(body).unwrap_err().to_string();
            assert!(error.contains("invalid type: sequence"), "{error}");
        }
    }

    #[test]
    fn trailing_data_is_refused_as_before() {
        assert!(from_object_slice::<Login>(b"{\"username\":\"a\",\"password\":\"b\"} x").is_err());
        assert!(from_object_slice::<Login>(b"{\"username\":\"a\",\"password\":\"b\"}\n").is_ok());
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
