//! Rendering of the AML export as a PDF. The domain decides the text; a renderer only lays it
//! out on pages.

use crate::domain::aml::ExportDocument;

/// The renderer failed (a bug in it, never bad input): a 500.
#[derive(Debug, Clone, thiserror::Error)]
#[error("PDF rendering failed: {0}")]
pub struct RenderError(pub String);

pub trait PdfRenderer: Send + Sync {
    /// A complete PDF file of `document`.
    fn render(&self, document: &ExportDocument) -> Result<Vec<u8>, RenderError>;
}

/// A stand-in for unit tests: the document's text, one line each, framed like a PDF file.
#[derive(Debug, Default, Clone, Copy)]
pub struct TextPdfRenderer;

impl PdfRenderer for TextPdfRenderer {
    fn render(&self, document: &ExportDocument) -> Result<Vec<u8>, RenderError> {
        let mut text = format!("%PDF-1.3 (text stand-in)\n{}\n", document.title);
        for line in &document.preamble {
            text.push_str(line);
            text.push('\n');
        }
        for section in &document.sections {
            text.push_str(&section.heading);
            text.push('\n');
            for line in &section.lines {
                text.push_str(line);
                text.push('\n');
            }
        }
        text.push_str("%%EOF\n");
        Ok(text.into_bytes())
    }
}
