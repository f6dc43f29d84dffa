//! Writes laid-out pages as a PDF file: one Type0 font (Identity-H, glyph ids as character
//! codes) over the font subset, its widths and ToUnicode map, and one compressed content
//! stream per page, compressed as soon as the page is drawn.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, TextRenderingMode, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::ports::pdf::RenderError;

use super::font::{BOLD_STROKE_EM, FONT_NAME, Font};
use super::layout::{PAGE_HEIGHT, PAGE_WIDTH, PlacedLine};

const FONT_RESOURCE: Name<'static> = Name(b"F1");

/// Object numbers of the document-wide objects; pages follow.
const CATALOG: Ref = Ref::new(1);
const PAGE_TREE: Ref = Ref::new(2);
const INFO: Ref = Ref::new(3);
const TYPE0_FONT: Ref = Ref::new(4);
const CID_FONT: Ref = Ref::new(5);
const DESCRIPTOR: Ref = Ref::new(6);
const FONT_FILE: Ref = Ref::new(7);
const TO_UNICODE: Ref = Ref::new(8);
const FIRST_PAGE: i32 = 9;

pub fn write(title: &str, pages: &[Vec<PlacedLine>], font: &Font) -> Result<Vec<u8>, RenderError> {
    let mut pdf = Pdf::new();
    let mut used = UsedGlyphs::default();
    let page_refs: Vec<(Ref, Ref)> = (0..pages.len())
        .map(|index| {
            let first = FIRST_PAGE + 2 * i32::try_from(index).unwrap_or(i32::MAX / 4);
            (Ref::new(first), Ref::new(first + 1))
        })
        .collect();
    pdf.catalog(CATALOG).pages(PAGE_TREE);
    pdf.pages(PAGE_TREE)
        .kids(page_refs.iter().map(|(page, _)| *page))
        .count(i32::try_from(pages.len()).unwrap_or(i32::MAX));
    for (lines, (page_ref, content_ref)) in pages.iter().zip(&page_refs) {
        let mut page = pdf.page(*page_ref);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(PAGE_TREE)
            .contents(*content_ref);
        page.resources().fonts().pair(FONT_RESOURCE, TYPE0_FONT);
        page.finish();
        let content = page_content(lines, font, &mut used);
        pdf.stream(*content_ref, &compress(&content)?)
            .filter(Filter::FlateDecode);
    }
    write_font(&mut pdf, font, &used)?;
    pdf.document_info(INFO)
        .title(TextStr(title))
        .producer(TextStr("talerbox"));
    Ok(pdf.finish())
}

/// The glyphs a document shows, with the first character each one stands for.
#[derive(Default)]
struct UsedGlyphs {
    characters: BTreeMap<u16, char>,
}

impl UsedGlyphs {
    /// `text` as big-endian glyph ids (characters without a glyph were made printable before).
    fn encode(&mut self, text: &str, font: &Font) -> Vec<u8> {
        let mut codes = Vec::with_capacity(text.len() * 2);
        for character in text.chars() {
            let glyph = font.glyph(character).unwrap_or(0);
            self.characters.entry(glyph).or_insert(character);
            codes.extend_from_slice(&glyph.to_be_bytes());
        }
        codes
    }
}

fn page_content(lines: &[PlacedLine], font: &Font, used: &mut UsedGlyphs) -> Vec<u8> {
    let mut content = Content::new();
    for line in lines {
        content.begin_text();
        content.set_font(FONT_RESOURCE, line.style.size);
        if line.style.bold {
            content.set_text_rendering_mode(TextRenderingMode::FillStroke);
            content.set_line_width(BOLD_STROKE_EM * line.style.size / 1000.0);
        } else {
            content.set_text_rendering_mode(TextRenderingMode::Fill);
        }
        content.set_text_matrix([1.0, 0.0, 0.0, 1.0, line.x, line.y]);
        content.show(Str(&used.encode(&line.text, font)));
        content.end_text();
    }
    content.finish().into_vec()
}

fn compress(data: &[u8]) -> Result<Vec<u8>, RenderError> {
    // Fast compression: a third of the time of the default level for a tenth more bytes.
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .map_err(|e| RenderError(format!("compressing: {e}")))
}

/// The Type0 font over the subset of the glyphs in `used`.
fn write_font(pdf: &mut Pdf, font: &Font, used: &UsedGlyphs) -> Result<(), RenderError> {
    let mut glyphs: BTreeSet<u16> = used.characters.keys().copied().collect();
    glyphs.insert(0);
    let subset_name = format!("{}+{FONT_NAME}", subset_tag(&glyphs));
    let base_font = Name(subset_name.as_bytes());

    pdf.type0_font(TYPE0_FONT)
        .base_font(base_font)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(CID_FONT)
        .to_unicode(TO_UNICODE);

    let mut cid = pdf.cid_font(CID_FONT);
    cid.subtype(CidFontType::Type2)
        .base_font(base_font)
        .system_info(SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        })
        .font_descriptor(DESCRIPTOR)
        .default_width(0.0)
        .cid_to_gid_map_predefined(Name(b"Identity"));
    let mut widths = cid.widths();
    for glyph in &glyphs {
        widths.consecutive(*glyph, [font.advance(*glyph)]);
    }
    widths.finish();
    cid.finish();

    let metrics = font.metrics();
    let [left, bottom, right, top] = metrics.bbox;
    pdf.font_descriptor(DESCRIPTOR)
        .name(base_font)
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(left, bottom, right, top))
        .italic_angle(0.0)
        .ascent(metrics.ascent)
        .descent(metrics.descent)
        .cap_height(metrics.cap_height)
        .stem_v(80.0)
        .font_file2(FONT_FILE);

    let subset = font.subset(&glyphs)?;
    pdf.stream(FONT_FILE, &compress(&subset)?)
        .filter(Filter::FlateDecode)
        .pair(
            Name(b"Length1"),
            i32::try_from(subset.len()).unwrap_or(i32::MAX),
        );

    let mut cmap = UnicodeCmap::new(
        Name(b"Custom"),
        SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"UCS"),
            supplement: 0,
        },
    );
    for (glyph, character) in &used.characters {
        if *glyph != 0 {
            cmap.pair(*glyph, *character);
        }
    }
    pdf.cmap(TO_UNICODE, &cmap.finish());
    Ok(())
}

/// Six capitals that name a subset (PDF 32000-1 §9.6.4), derived from its glyphs so that the
/// same text gives the same file.
fn subset_tag(glyphs: &BTreeSet<u16>) -> String {
    let mut hash: u32 = 0x811C_9DC5; // FNV-1a
    for glyph in glyphs {
        for byte in glyph.to_be_bytes() {
            hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
        }
    }
    (0..6)
        .map(|_| {
            let letter = b'A' + u8::try_from(hash % 26).unwrap_or(0);
            hash /= 26;
            char::from(letter)
        })
        .collect()
}
