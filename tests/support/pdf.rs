//! The text of a PDF export as a reader extracts it: each `Tj` string (two-byte glyph ids)
//! decoded through the font's ToUnicode map, one line each, pages in order.

use std::collections::HashMap;

/// The page count and the text of `pdf`.
pub fn pdf_text(pdf: &[u8]) -> (usize, String) {
    let parsed = lopdf::Document::load_mem(pdf).unwrap();
    let font = parsed
        .objects
        .values()
        .filter_map(|o| o.as_dict().ok())
        .find(|d| d.get(b"Subtype").and_then(|t| t.as_name()).ok() == Some(b"Type0".as_slice()))
        .unwrap();
    let cmap = font.get(b"ToUnicode").unwrap().as_reference().unwrap();
    let cmap = parsed.get_object(cmap).unwrap().as_stream().unwrap();
    let map = to_unicode(&cmap.decompressed_content().unwrap_or(cmap.content.clone()));
    let mut text = String::new();
    for page in parsed.get_pages().values() {
        let content =
            lopdf::content::Content::decode(&parsed.get_page_content(*page).unwrap()).unwrap();
        for operation in content.operations.iter().filter(|o| o.operator == "Tj") {
            for pair in operation.operands[0].as_str().unwrap().chunks(2) {
                let glyph = u16::from_be_bytes([pair[0], pair[1]]);
                text.push_str(map.get(&glyph).map_or("\u{FFFD}", String::as_str));
            }
            text.push('\n');
        }
    }
    (parsed.get_pages().len(), text)
}

/// The `bfchar` entries of a ToUnicode CMap: glyph id to text (UTF-16BE in hex).
fn to_unicode(cmap: &[u8]) -> HashMap<u16, String> {
    let text = String::from_utf8_lossy(cmap);
    let mut map = HashMap::new();
    for block in text.split("beginbfchar").skip(1) {
        let body = block.split("endbfchar").next().unwrap();
        let hex: Vec<&str> = body
            .split(['<', '>'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        for entry in hex.chunks(2) {
            let glyph = u16::from_str_radix(entry[0], 16).unwrap();
            let units: Vec<u16> = (0..entry[1].len())
                .step_by(4)
                .map(|i| u16::from_str_radix(&entry[1][i..i + 4], 16).unwrap())
                .collect();
            map.insert(glyph, String::from_utf16(&units).unwrap());
        }
    }
    map
}
