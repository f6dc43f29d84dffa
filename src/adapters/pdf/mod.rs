//! The PDF renderer of the AML export, on printpdf with the standard Helvetica fonts
//! (WinAnsiEncoding, no font files, extractable text).

mod layout;
mod metrics;

use std::panic::{AssertUnwindSafe, catch_unwind};

use printpdf::{BuiltinFont, IndirectFontRef, Mm, PdfDocument, PdfDocumentReference, Pt};

use crate::domain::aml::ExportDocument;
use crate::ports::pdf::{PdfRenderer, RenderError};

use layout::{PAGE_HEIGHT, PAGE_WIDTH, PlacedLine, layout};

#[derive(Debug, Default, Clone, Copy)]
pub struct PrintPdfRenderer;

impl PdfRenderer for PrintPdfRenderer {
    fn render(&self, document: &ExportDocument) -> Result<Vec<u8>, RenderError> {
        let pages = layout(document);
        // printpdf keeps its state behind `Rc` and unwraps internally; its panics (bugs, never
        // our input, which is sanitised by the layout) must not take a worker down.
        catch_unwind(AssertUnwindSafe(|| draw(&document.title, &pages)))
            .unwrap_or_else(|_| Err(RenderError("printpdf panicked".into())))
    }
}

fn failed(error: impl std::fmt::Display) -> RenderError {
    RenderError(error.to_string())
}

fn draw(title: &str, pages: &[Vec<PlacedLine>]) -> Result<Vec<u8>, RenderError> {
    let (width, height) = (Mm::from(Pt(PAGE_WIDTH)), Mm::from(Pt(PAGE_HEIGHT)));
    let (doc, first_page, first_layer) = PdfDocument::new(title, width, height, "text");
    let regular = doc
        .add_builtin_font(BuiltinFont::Helvetica)
        .map_err(failed)?;
    let bold = doc
        .add_builtin_font(BuiltinFont::HelveticaBold)
        .map_err(failed)?;
    for (index, lines) in pages.iter().enumerate() {
        let (page, layer) = if index == 0 {
            (first_page, first_layer)
        } else {
            doc.add_page(width, height, "text")
        };
        let layer = doc.get_page(page).get_layer(layer);
        for line in lines {
            let font: &IndirectFontRef = if line.style.bold { &bold } else { &regular };
            layer.use_text(
                line.text.as_str(),
                line.style.size,
                Mm::from(Pt(line.x)),
                Mm::from(Pt(line.y)),
                font,
            );
        }
    }
    save(doc)
}

fn save(doc: PdfDocumentReference) -> Result<Vec<u8>, RenderError> {
    doc.save_to_bytes().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::aml::ExportSection;

    fn document(rows: usize) -> ExportDocument {
        ExportDocument {
            title: "KYC attribute history".into(),
            preamble: vec!["Account (h_normalized_payto): A2260CZAX2QSJ6J5GW753ZVBBDAYRS904SZHJ05G5QZXYVJKP37G".into()],
            sections: (0..rows)
                .map(|i| ExportSection {
                    heading: format!("Row {i} - collected 2023-11-14T22:15:23Z - source: customer"),
                    lines: vec![
                        "FORM_ID: test".into(),
                        format!("FULL_NAME: Zoë Example {i}"),
                    ],
                })
                .collect(),
        }
    }

    /// The page count and the text of every `Tj`, decoded as WinAnsi. (lopdf's own
    /// `extract_text` misses fonts behind a reference and falls back to StandardEncoding.)
    fn text_of(pdf: &[u8]) -> (usize, String) {
        let parsed = lopdf::Document::load_mem(pdf).unwrap();
        let mut text = String::new();
        for page in parsed.get_pages().values() {
            let content =
                lopdf::content::Content::decode(&parsed.get_page_content(*page).unwrap()).unwrap();
            for operation in content.operations.iter().filter(|o| o.operator == "Tj") {
                let bytes = operation.operands[0].as_str().unwrap();
                text.push_str(&lopdf::Document::decode_text(
                    Some("WinAnsiEncoding"),
                    bytes,
                ));
                text.push('\n');
            }
        }
        let fonts: Vec<&lopdf::Dictionary> = parsed
            .objects
            .values()
            .filter_map(|o| o.as_dict().ok())
            .filter(|d| d.get(b"Type").and_then(|t| t.as_name()).ok() == Some(b"Font".as_slice()))
            .collect();
        assert_eq!(fonts.len(), 2);
        for font in fonts {
            assert_eq!(
                font.get(b"Encoding").unwrap().as_name().unwrap(),
                b"WinAnsiEncoding"
            );
        }
        (parsed.get_pages().len(), text)
    }

    #[test]
    fn renders_a_parseable_pdf_with_extractable_text() {
        let pdf = PrintPdfRenderer.render(&document(3)).unwrap();
        assert!(pdf.starts_with(b"%PDF-1."));
        let end = String::from_utf8_lossy(&pdf[pdf.len() - 8..]).into_owned();
        assert!(end.trim_end().ends_with("%%EOF"), "{end:?}");
        let (pages, text) = text_of(&pdf);
        assert_eq!(pages, 1);
        assert!(
            text.contains("A2260CZAX2QSJ6J5GW753ZVBBDAYRS904SZHJ05G5QZXYVJKP37G"),
            "{text}"
        );
        assert!(text.contains("FULL_NAME: Zoë Example 2"), "{text}");
        assert!(text.contains("Row 0 - collected 2023-11-14T22:15:23Z - source: customer"));
    }

    #[test]
    fn eighty_rows_take_several_pages() {
        let pdf = PrintPdfRenderer.render(&document(80)).unwrap();
        let (pages, text) = text_of(&pdf);
        assert!(pages >= 4, "{pages}");
        assert!(text.contains("FULL_NAME: Zoë Example 79"));
    }
}
