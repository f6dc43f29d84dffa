//! Status and error pages for browsers outside the challenger (e.g. kyc-proof), rendered from
//! templates embedded in the binary (minijinja, HTML auto-escaping).

use std::sync::LazyLock;

use axum::response::Html;
use minijinja::{Environment, context};

/// The environment of the message page; `None` only if an embedded template is broken,
/// which the tests rule out.
static PAGES: LazyLock<Option<Environment<'static>>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_template("base.html", include_str!("templates/base.html"))
        .ok()?;
    env.add_template("message.html", include_str!("templates/message.html"))
        .ok()?;
    Some(env)
});

/// A page with a title, a message and, for errors, the Taler error code.
pub fn render_message(title: &str, message: &str, code: Option<u32>) -> Html<String> {
    let rendered = PAGES
        .as_ref()
        .and_then(|env| env.get_template("message.html").ok())
        .and_then(|template| template.render(context! { title, message, code }).ok());
    Html(rendered.unwrap_or_else(|| {
        tracing::error!("rendering a message page failed");
        "<!DOCTYPE html><title>Error</title><p>Something went wrong.</p>".to_owned()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_escaped_and_carry_the_code() {
        let Html(page) = render_message("Done <now>", "a & b", Some(1929));
        assert!(page.contains("<h1>Done &lt;now&gt;</h1>"), "{page}");
        assert!(page.contains("a &amp; b"));
        assert!(page.contains("Error code 1929."));
        let Html(plain) = render_message("Step complete", "Thanks", None);
        assert!(!plain.contains("Error code"));
    }
}
