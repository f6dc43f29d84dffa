use super::*;
// The black-box tests' extraction, so that both read the files the same way.
#[path = "../../../tests/support/pdf.rs"]
mod extraction;
use crate::domain::aml::{AttributeEvent, AttributeHistory, ExportContext, ExportSection};
use crate::domain::primitives::{EddsaPrivateKey, NormalizedPaytoHash, Timestamp};
use extraction::pdf_text as extract;

fn document(rows: usize, name: &str) -> ExportDocument {
    ExportDocument {
        title: "KYC attribute history".into(),
        preamble: vec!["Account hash (h_normalized_payto): A2260CZAX2QSJ6J5GW753ZVBBDAYRS904SZHJ05G5QZXYVJKP37G".into()],
        sections: (0..rows)
            .map(|i| ExportSection {
                heading: format!("Event {} of {rows} - collected 2023-11-14T22:15:23Z", i + 1),
                lines: vec![
                    "Form: Full name and date of birth (full_name_and_birthdate)".into(),
                    format!("Full name: {name} {i}"),
                    "Date of birth: 1990-01-02".into(),
                    "E-mail address: zoe@example.com".into(),
                    "Postal address: Bahnhofstrasse 1 8001 Zürich".into(),
                ],
            })
            .collect(),
    }
}

fn render(document: &ExportDocument) -> Vec<u8> {
    UnicodePdfRenderer::new().unwrap().render(document).unwrap()
}

#[test]
fn unicode_text_is_printed_and_extractable() {
    let mut doc = document(2, "Łukasz Čapek");
    doc.sections[1]
        .lines
        .push("Full name: Zoë Ærøskøbing".into());
    doc.sections[1]
        .lines
        .push("Greek: Ελένη Παπαδοπούλου, Cyrillic: Юлия Соколова".into());
    doc.sections[1].lines.push("Not in the font: 🧠 ク".into());
    let pdf = render(&doc);
    assert!(pdf.starts_with(b"%PDF-1."));
    assert!(
        String::from_utf8_lossy(&pdf[pdf.len() - 8..])
            .trim_end()
            .ends_with("%%EOF")
    );
    let (pages, text) = extract(&pdf);
    assert_eq!(pages, 1);
    assert!(text.contains("Full name: Łukasz Čapek 1"), "{text}");
    assert!(text.contains("Full name: Zoë Ærøskøbing"), "{text}");
    assert!(text.contains("Ελένη Παπαδοπούλου"), "{text}");
    assert!(text.contains("Юлия Соколова"), "{text}");
    assert!(
        text.contains("Not in the font: [U+1F9E0] [U+30AF]"),
        "{text}"
    );
    assert!(!text.contains('?') && !text.contains('\u{FFFD}'), "{text}");
    assert!(text.contains("Page 1 of 1"), "{text}");
}

#[test]
fn the_font_is_embedded_as_a_subset_and_no_standard_is_claimed() {
    let pdf = render(&document(3, "Alice"));
    let parsed = lopdf::Document::load_mem(&pdf).unwrap();
    let descriptor = parsed
        .objects
        .values()
        .filter_map(|o| o.as_dict().ok())
        .find(|d| d.has(b"FontFile2"))
        .unwrap();
    let name = descriptor.get(b"FontName").unwrap().as_name_str().unwrap();
    assert!(
        name.ends_with("+DejaVuSans") && name.len() == 7 + 10,
        "{name}"
    );
    let file = descriptor
        .get(b"FontFile2")
        .unwrap()
        .as_reference()
        .unwrap();
    let file = parsed.get_object(file).unwrap().as_stream().unwrap();
    // The full font is 740 KiB (360 KiB compressed); the subset a few KiB.
    assert!(file.content.len() < 40_000, "{}", file.content.len());
    let raw = String::from_utf8_lossy(&pdf);
    for claim in ["pdfaid", "/Metadata", "PDF/A", "/OutputIntents"] {
        assert!(!raw.contains(claim), "{claim}");
    }
}

#[test]
fn twenty_rows_stay_under_100_kb_and_pages_are_numbered() {
    let pdf = render(&document(20, "Zoë Ærøskøbing"));
    assert!(pdf.len() < 100 * 1024, "{} bytes", pdf.len());
    let pdf = render(&document(80, "Zoë Ærøskøbing"));
    let (pages, text) = extract(&pdf);
    assert!(pages >= 3, "{pages}");
    for page in 1..=pages {
        assert!(text.contains(&format!("Page {page} of {pages}")), "{text}");
    }
    assert!(text.contains("Full name: Zoë Ærøskøbing 79"));
}

#[test]
fn an_export_of_one_huge_row_stays_small() {
    let mut huge = serde_json::Map::new();
    for i in 0..2_000 {
        huge.insert(
            format!("FIELD_{i:04}"),
            format!("value {i} ").repeat(50).into(),
        );
    }
    let history = AttributeHistory {
        h_payto: NormalizedPaytoHash([7; 32]),
        events: vec![AttributeEvent {
            rowid: 1,
            by_aml_officer: false,
            attributes: Some(serde_json::from_value(huge.into()).unwrap()),
            collection_time: Timestamp::from_seconds(1_700_000_000).unwrap(),
        }],
    };
    let context = ExportContext {
        exchange: "https://exchange.example/".into(),
        payto: None,
        officer_name: "Olga".into(),
        officer_pub: EddsaPrivateKey::from_seed([2; 32]).public_key(),
        exported_at: Timestamp::from_seconds(1_700_000_100).unwrap(),
    };
    let pdf = render(&history.document(&context));
    assert!(pdf.len() < 1024 * 1024, "{} bytes", pdf.len());
    let (pages, text) = extract(&pdf);
    assert!(pages < 100, "{pages} pages");
    assert!(text.contains("1800 more attributes not shown"), "{text}");
}
