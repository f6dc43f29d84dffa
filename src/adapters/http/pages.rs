//! Small server-rendered HTML pages (status and error pages for browsers).

use axum::response::Html;

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A page with a title, a message and, for errors, the Taler error code.
pub fn render_message(title: &str, message: &str, code: Option<u32>) -> Html<String> {
    let code = code
        .map(|c| format!("<p>Error code: {c}</p>"))
        .unwrap_or_default();
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n<main>\n<h1>{title}</h1>\n<p>{message}</p>\n{code}\n</main>\n</body>\n</html>\n",
        title = escape(title),
        message = escape(message),
    ))
}
