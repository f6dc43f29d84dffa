//! The PDF renderer of the AML export: text laid out on A4 pages in an embedded Unicode font,
//! subset to the glyphs the document uses, with a ToUnicode map so that the text can be
//! extracted and searched. The file claims no standard (no PDF/A).

mod font;
mod layout;
mod writer;

use crate::domain::aml::ExportDocument;
use crate::ports::pdf::{PdfRenderer, RenderError};

use font::Font;

/// Renders with the embedded DejaVu Sans.
pub struct UnicodePdfRenderer {
    font: Font,
}

impl UnicodePdfRenderer {
    pub fn new() -> Result<UnicodePdfRenderer, RenderError> {
        Ok(UnicodePdfRenderer {
            font: Font::embedded()?,
        })
    }
}

impl PdfRenderer for UnicodePdfRenderer {
    fn render(&self, document: &ExportDocument) -> Result<Vec<u8>, RenderError> {
        let pages = layout::layout(document, &self.font);
        writer::write(&document.title, &pages, &self.font)
    }
}

#[cfg(test)]
mod tests;
