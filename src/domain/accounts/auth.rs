//! Who is calling: credentials from the `Authorization` header, token scopes, and the
//! access a caller has.

use crate::domain::primitives::{ErrorCode, TalerError, Timestamp, base32};

use super::model::Username;

/// Prefix of bearer tokens on the wire.
pub const TOKEN_PREFIX: &str = "secret-token:";

/// What a token may be used for. Only `readonly` and `readwrite` grant access to the
/// account endpoints; the others are stored for the APIs that use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Readonly,
    Readwrite,
    Revenue,
    Wiregateway,
    Observability,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Readonly => "readonly",
            Scope::Readwrite => "readwrite",
            Scope::Revenue => "revenue",
            Scope::Wiregateway => "wiregateway",
            Scope::Observability => "observability",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        [
            Scope::Readonly,
            Scope::Readwrite,
            Scope::Revenue,
            Scope::Wiregateway,
            Scope::Observability,
        ]
        .into_iter()
        .find(|scope| scope.as_str() == text)
    }
}

/// The raw bytes of a bearer token (32 random bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(pub [u8; 32]);

impl TokenSecret {
    /// `secret-token:` + base32.
    pub fn to_wire(&self) -> String {
        format!("{TOKEN_PREFIX}{}", base32::encode(&self.0))
    }
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// Credentials as sent, before they are checked.
#[derive(Debug, Clone)]
pub enum Credentials {
    Basic { login: String, password: String },
    Bearer(TokenSecret),
}

fn malformed(detail: &str) -> TalerError {
    TalerError::new(ErrorCode::GenericHttpHeadersMalformed).with_detail(detail.to_owned())
}

/// Parses an `Authorization` header value (spec §4.1 outcomes).
pub fn parse_authorization(header: &str) -> Result<Credentials, TalerError> {
    let Some((scheme, payload)) = header.split_once(' ') else {
        return Err(malformed("Authorization header without a scheme"));
    };
    let payload = payload.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded =
            decode_base64(payload).ok_or_else(|| malformed("Basic credentials are not base64"))?;
        let text =
            String::from_utf8(decoded).map_err(|_| malformed("Basic credentials are not UTF-8"))?;
        let (login, password) = text
            .split_once(':')
            .ok_or_else(|| malformed("Basic credentials without ':'"))?;
        Ok(Credentials::Basic {
            login: login.to_owned(),
            password: password.to_owned(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let token = payload
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| malformed("bearer token without the secret-token: prefix"))?;
        let bytes = base32::decode_array::<32>(token)
            .map_err(|_| malformed("bearer token is not 32 bytes of base32"))?;
        Ok(Credentials::Bearer(TokenSecret(bytes)))
    } else {
        Err(TalerError::new(ErrorCode::GenericUnauthorized)
            .with_detail(format!("unsupported authorization scheme {scheme}")))
    }
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    data_encoding::BASE64.decode(text.as_bytes()).ok()
}

/// How a caller authenticated, which limits what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Basic auth: full access, may mint tokens.
    Password,
    /// A bearer token with its scope; `token_hash` names it for deletion.
    Token {
        scope: Scope,
        refreshable: bool,
        token_hash: [u8; 32],
    },
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub username: Username,
    pub access: Access,
}

impl Caller {
    /// The operator at the command line, who acts with the admin's full rights.
    pub fn operator() -> Caller {
        Caller {
            username: Username(super::model::ADMIN.to_owned()),
            access: Access::Password,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.username.is_admin()
    }

    pub fn can_read(&self) -> bool {
        match self.access {
            Access::Password => true,
            Access::Token { scope, .. } => matches!(scope, Scope::Readonly | Scope::Readwrite),
        }
    }

    pub fn can_write(&self) -> bool {
        match self.access {
            Access::Password => true,
            Access::Token { scope, .. } => scope == Scope::Readwrite,
        }
    }
}

/// A stored token (only its hash is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: [u8; 32],
    pub username: Username,
    pub scope: Scope,
    pub refreshable: bool,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(text: &str) -> String {
        format!("Basic {}", data_encoding::BASE64.encode(text.as_bytes()))
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        match parse_authorization(&basic("alice:pa:ss")).unwrap() {
            Credentials::Basic { login, password } => {
                assert_eq!((login.as_str(), password.as_str()), ("alice", "pa:ss"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_headers_are_400_23_and_unknown_schemes_401_40() {
        for header in [
            "WTF",
            &basic("no-colon"),
            "Basic !!!",
            "Bearer abc",
            "Bearer secret-token:XYZ",
        ] {
            let err = parse_authorization(header).unwrap_err();
            assert_eq!(err.code, ErrorCode::GenericHttpHeadersMalformed, "{header}");
        }
        let err = parse_authorization("Digest abc").unwrap_err();
        assert_eq!(err.code, ErrorCode::GenericUnauthorized);
    }

    #[test]
    fn bearer_tokens_round_trip() {
        let secret = TokenSecret([7; 32]);
        let header = format!("Bearer {}", secret.to_wire());
        match parse_authorization(&header).unwrap() {
            Credentials::Bearer(parsed) => assert_eq!(parsed, secret),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scopes() {
        for scope in [
            "readonly",
            "readwrite",
            "revenue",
            "wiregateway",
            "observability",
        ] {
            assert_eq!(Scope::parse(scope).unwrap().as_str(), scope);
        }
        assert_eq!(Scope::parse("admin"), None);
    }
}
