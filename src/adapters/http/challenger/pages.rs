//! The browser pages of the challenger: server-rendered HTML from templates embedded in the
//! binary (minijinja, HTML auto-escaping). Links are relative, so the pages work under any
//! prefix and behind any proxy.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, context};
use serde::Serialize;

use crate::domain::challenges::{Address, AddressType, ChallengeStatus};
use crate::domain::primitives::{ErrorCode, TalerError, Timestamp};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("address.html", include_str!("../templates/address.html")),
    ("pin.html", include_str!("../templates/pin.html")),
    ("done.html", include_str!("../templates/done.html")),
    ("error.html", include_str!("../templates/error.html")),
];

/// The templates, parsed once at startup.
pub struct Pages {
    env: Environment<'static>,
    address_type: AddressType,
    address_hint: String,
}

/// One input of an address form.
#[derive(Debug, Serialize)]
struct Field {
    name: &'static str,
    label: &'static str,
    value: String,
    input_type: &'static str,
    autocomplete: &'static str,
    multiline: bool,
    hint: String,
}

/// What the PIN page shows.
pub struct PinPage<'a> {
    pub nonce: &'a str,
    pub address: &'a Address,
    pub transmitted: bool,
    pub attempts_left: u32,
    pub transmissions_left: u32,
    pub changes_left: u32,
    pub fixed: bool,
    pub retransmission_time: Timestamp,
    pub now: Timestamp,
    pub error: Option<String>,
}

/// How the user is addressed about a kind of address ("e-mail address", …).
fn kind(address_type: AddressType) -> &'static str {
    match address_type {
        AddressType::Email => "e-mail address",
        AddressType::Phone => "phone number",
        AddressType::Postal | AddressType::PostalCh => "postal address",
    }
}

/// An error in words, for people.
pub fn words(error: &TalerError) -> String {
    use ErrorCode as C;
    let text = match error.code {
        C::ChallengerGenericValidationUnknown => {
            "This validation is unknown or has expired. Please start again from the service \
             that sent you here."
        }
        C::ChallengerGenericClientUnknown => "The service that sent you here is not registered.",
        C::ChallengerGenericClientForbiddenBadRedirectUri => {
            "The service that sent you here gave a return address that does not match its \
             registration."
        }
        C::ChallengerTooManyAttempts => {
            "There were too many attempts for this validation. Please start again from the \
             service that sent you here."
        }
        C::ChallengerInvalidPin => "That PIN is not right. Please check the message and try again.",
        C::ChallengerClientForbiddenReadOnly => "This address cannot be changed.",
        C::ChallengerHelperExecFailed => {
            "We could not send the PIN. Please try again in a few minutes."
        }
        C::GenericParameterMissing => {
            return format!("Please fill in {}.", field_words(error.detail.as_deref()));
        }
        C::GenericParameterMalformed | C::GenericJsonInvalid => {
            return format!(
                "{} is not valid ({}).",
                capitalized(&field_words(error.detail.as_deref())),
                error.hint
            );
        }
        _ => "Something went wrong on our side. Please try again later.",
    };
    text.to_owned()
}

fn field_words(field: Option<&str>) -> String {
    match field {
        Some("CONTACT_EMAIL") => "your e-mail address".into(),
        Some("CONTACT_PHONE") => "your phone number".into(),
        Some("CONTACT_NAME") => "your name".into(),
        Some("ADDRESS_LINES") => "your address".into(),
        Some("ADDRESS_COUNTRY") => "your country".into(),
        Some("pin") => "the PIN".into(),
        Some(other) => format!("the field {other}"),
        None => "the form".into(),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(time: Timestamp) -> String {
    let seconds = time.as_seconds().unwrap_or(u64::from(u32::MAX));
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(seconds))
}

/// A page response: HTML, never cached (it may show addresses).
pub fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

impl Pages {
    pub fn new(address_type: AddressType, address_hint: &str) -> Result<Pages, minijinja::Error> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Pages {
            env,
            address_type,
            address_hint: address_hint.to_owned(),
        })
    }

    fn fields(&self, values: Option<&Address>) -> Vec<Field> {
        let hint = |name: &str| {
            let single = self.address_type.fields().len() == 1;
            if single || name == "CONTACT_EMAIL" || name == "CONTACT_PHONE" {
                self.address_hint.clone()
            } else {
                String::new()
            }
        };
        self.address_type
            .fields()
            .iter()
            .map(|&name| {
                let (label, input_type, autocomplete, multiline) = match name {
                    "CONTACT_EMAIL" => ("E-mail address", "email", "email", false),
                    "CONTACT_PHONE" => ("Phone number", "tel", "tel", false),
                    "CONTACT_NAME" => ("Name", "text", "name", false),
                    "ADDRESS_LINES" => ("Address", "text", "street-address", true),
                    "ADDRESS_COUNTRY" => ("Country", "text", "country-name", false),
                    _ => ("Address", "text", "on", false),
                };
                Field {
                    name,
                    label,
                    value: values
                        .and_then(|v| v.get(name))
                        .cloned()
                        .unwrap_or_default(),
                    input_type,
                    autocomplete,
                    multiline,
                    hint: hint(name),
                }
            })
            .collect()
    }

    fn render(&self, status: StatusCode, name: &str, values: minijinja::Value) -> Response {
        let rendered = self
            .env
            .get_template(name)
            .and_then(|template| template.render(values));
        match rendered {
            Ok(body) => html(status, body),
            Err(e) => {
                tracing::error!(template = name, error = %e, "rendering a page failed");
                html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!DOCTYPE html><title>Error</title><p>Something went wrong.</p>".into(),
                )
            }
        }
    }

    /// The address form (from `/authorize`, or again after a refused address).
    pub fn address(
        &self,
        status: StatusCode,
        nonce: &str,
        challenge: &ChallengeStatus,
        error: Option<String>,
    ) -> Response {
        let values = context! {
            nonce,
            reference => nonce.get(..6).unwrap_or(nonce),
            kind => kind(self.address_type),
            fields => minijinja::Value::from(minijinja::value::Serde(self.fields(challenge.last_address.as_ref()))),
            fixed => challenge.fix_address,
            changes_left => challenge.changes_left,
            error,
        };
        self.render(status, "address.html", values)
    }

    /// The PIN form, with the limits left and when a new PIN can be sent.
    pub fn pin(&self, status: StatusCode, page: &PinPage<'_>) -> Response {
        let wait = page
            .retransmission_time
            .as_micros()
            .saturating_sub(page.now.as_micros());
        let address = page
            .address
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let values = context! {
            nonce => page.nonce,
            reference => page.nonce.get(..6).unwrap_or(page.nonce),
            address,
            fields => minijinja::Value::from(minijinja::value::Serde(self.fields(Some(page.address)))),
            transmitted => page.transmitted,
            attempts_left => page.attempts_left,
            transmissions_left => page.transmissions_left,
            changes_left => page.changes_left,
            fixed => page.fixed,
            resend_now => wait == 0,
            resend_at => http_date(page.retransmission_time),
            resend_minutes => wait.div_ceil(60_000_000),
            error => page.error.clone(),
        };
        self.render(status, "pin.html", values)
    }

    /// Solved: a link on to the client.
    pub fn done(&self, redirect_url: &str) -> Response {
        self.render(StatusCode::OK, "done.html", context! { redirect_url })
    }

    /// Solved before (seen at `/authorize`): a button that fetches a fresh code.
    pub fn solved(&self, nonce: &str) -> Response {
        self.render(StatusCode::OK, "done.html", context! { nonce })
    }

    pub fn error(&self, status: StatusCode, error: &TalerError) -> Response {
        let heading = if status.is_server_error() {
            "Something went wrong"
        } else {
            "This did not work"
        };
        let values = context! {
            heading,
            error => words(error),
            code => error.code.number(),
        };
        self.render(status, "error.html", values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn status() -> ChallengeStatus {
        ChallengeStatus {
            fix_address: true,
            last_address: Some(Address::from([(
                "CONTACT_EMAIL".into(),
                "<b>@example.com".into(),
            )])),
            changes_left: 2,
            retransmission_time: Timestamp::EPOCH,
            pin_transmissions_left: 3,
            auth_attempts_left: 3,
            solved: false,
        }
    }

    #[tokio::test]
    async fn every_template_renders_and_escapes() {
        let pages = Pages::new(AddressType::Email, "john@example.com").unwrap();
        let page = body(pages.address(StatusCode::OK, "ABCDEFGH", &status(), None)).await;
        assert!(page.contains("&lt;b&gt;@example.com"), "{page}");
        assert!(page.contains("readonly"));
        assert!(page.contains("ABCDEF"));
        assert!(page.contains("action=\"../challenge/ABCDEFGH\""));
        let address = status().last_address.unwrap();
        let pin = PinPage {
            nonce: "ABCDEFGH",
            address: &address,
            transmitted: true,
            attempts_left: 1,
            transmissions_left: 2,
            changes_left: 0,
            fixed: false,
            retransmission_time: Timestamp::from_seconds(600).unwrap(),
            now: Timestamp::from_seconds(1).unwrap(),
            error: Some("That PIN is not right.".into()),
        };
        let page = body(pages.pin(StatusCode::FORBIDDEN, &pin)).await;
        assert!(page.contains("1 attempt left"), "{page}");
        assert!(page.contains("in about 10 minutes"), "{page}");
        assert!(page.contains("role=\"alert\""));
        let page = body(pages.done("https://c.example/?code=A&state=B")).await;
        assert!(page.contains("code=A&amp;state=B"), "{page}");
        let error = TalerError::new(ErrorCode::ChallengerGenericValidationUnknown);
        let page = body(pages.error(StatusCode::NOT_FOUND, &error)).await;
        assert!(page.contains("unknown or has expired"));
    }

    #[tokio::test]
    async fn postal_forms_have_every_field() {
        let pages = Pages::new(AddressType::Postal, "").unwrap();
        let mut status = status();
        status.last_address = None;
        let page = body(pages.address(StatusCode::OK, "N", &status, None)).await;
        for field in ["CONTACT_NAME", "ADDRESS_LINES", "ADDRESS_COUNTRY"] {
            assert!(page.contains(&format!("name=\"{field}\"")), "{field}");
        }
    }
}
