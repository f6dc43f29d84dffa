//! Places the export's text on A4 pages: wraps every line to the text width, starts a new page
//! when one is full, and keeps a row's heading with its first line. Pure: the renderer only
//! draws what this returns.

use crate::domain::aml::ExportDocument;

use super::font::Font;

/// A4 in points.
pub const PAGE_WIDTH: f32 = 595.28;
pub const PAGE_HEIGHT: f32 = 841.89;
const MARGIN: f32 = 56.7; // 20 mm
const TEXT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;
const TOP: f32 = PAGE_HEIGHT - MARGIN;
/// Lowest baseline of body text; the footer sits below it.
const BOTTOM: f32 = MARGIN;
const FOOTER_Y: f32 = MARGIN / 2.0;

const TITLE: Style = Style::new(16.0, true, 0.0, 22.0);
const PREAMBLE: Style = Style::new(9.0, false, 0.0, 12.0);
const HEADING: Style = Style::new(11.0, true, 0.0, 15.0);
const ATTRIBUTE: Style = Style::new(10.0, false, 14.0, 13.0);
const FOOTER_SIZE: f32 = 8.0;
/// Continuation lines of a wrapped line are indented this much further.
const CONTINUATION_INDENT: f32 = 14.0;
/// Extra space above each row's heading.
const SECTION_GAP: f32 = 8.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    pub size: f32,
    pub bold: bool,
    indent: f32,
    leading: f32,
}

impl Style {
    const fn new(size: f32, bold: bool, indent: f32, leading: f32) -> Style {
        Style {
            size,
            bold,
            indent,
            leading,
        }
    }
}

/// One line of text at a position (points from the bottom-left corner).
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedLine {
    pub text: String,
    pub x: f32,
    pub y: f32,
    pub style: Style,
}

/// Lays out `document`; every page ends with a `Page i of n` footer.
pub fn layout(document: &ExportDocument, font: &Font) -> Vec<Vec<PlacedLine>> {
    let mut pages = Pages::new(font);
    pages.paragraph(&document.title, TITLE, 1);
    for line in &document.preamble {
        pages.paragraph(line, PREAMBLE, 1);
    }
    for section in &document.sections {
        pages.gap(SECTION_GAP);
        // The heading and at least the first line of the row stay together.
        let first = section
            .lines
            .first()
            .map_or(0, |line| wrap(font, line, ATTRIBUTE).len().min(1));
        let heading_lines = wrap(font, &section.heading, HEADING).len();
        let keep = heading_lines as f32 * HEADING.leading + first as f32 * ATTRIBUTE.leading;
        pages.reserve(keep);
        pages.paragraph(&section.heading, HEADING, heading_lines);
        for line in &section.lines {
            pages.paragraph(line, ATTRIBUTE, 1);
        }
    }
    pages.finish()
}

struct Pages<'f> {
    font: &'f Font,
    done: Vec<Vec<PlacedLine>>,
    current: Vec<PlacedLine>,
    /// Baseline of the last line placed (TOP before any).
    y: f32,
}

impl<'f> Pages<'f> {
    fn new(font: &'f Font) -> Pages<'f> {
        Pages {
            font,
            done: Vec::new(),
            current: Vec::new(),
            y: TOP,
        }
    }

    fn new_page(&mut self) {
        self.done.push(std::mem::take(&mut self.current));
        self.y = TOP;
    }

    /// Starts a new page unless `height` more fits on this one (a fresh page takes anything).
    fn reserve(&mut self, height: f32) {
        if !self.current.is_empty() && self.y - height < BOTTOM {
            self.new_page();
        }
    }

    fn gap(&mut self, height: f32) {
        if !self.current.is_empty() {
            self.y -= height;
        }
    }

    /// Places `text` wrapped to the text width; `keep` lines of it must share a page.
    fn paragraph(&mut self, text: &str, style: Style, keep: usize) {
        for (index, line) in wrap(self.font, text, style).into_iter().enumerate() {
            let keep_lines = if index == 0 { keep.max(1) } else { 1 };
            self.reserve(keep_lines as f32 * style.leading);
            self.y -= style.leading;
            let x = MARGIN + style.indent + if index == 0 { 0.0 } else { CONTINUATION_INDENT };
            self.current.push(PlacedLine {
                text: line,
                x,
                y: self.y,
                style,
            });
        }
    }

    fn finish(mut self) -> Vec<Vec<PlacedLine>> {
        if !self.current.is_empty() || self.done.is_empty() {
            self.new_page();
        }
        let count = self.done.len();
        for (index, page) in self.done.iter_mut().enumerate() {
            let text = format!("Page {} of {count}", index + 1);
            let style = Style::new(FOOTER_SIZE, false, 0.0, FOOTER_SIZE);
            let x = PAGE_WIDTH - MARGIN - self.font.text_width(&text, FOOTER_SIZE, false);
            page.push(PlacedLine {
                text,
                x,
                y: FOOTER_Y,
                style,
            });
        }
        self.done
    }
}

/// Splits `text` (made printable) into lines that fit the text width in `style`: at spaces
/// where possible, inside a word that is wider than a whole line. Widths are summed as the
/// line grows, so a line costs time linear in its length.
fn wrap(font: &Font, text: &str, style: Style) -> Vec<String> {
    let text = font.printable(text);
    let first_width = TEXT_WIDTH - style.indent;
    // A hair less than the room, so that rounding in the running sums never overflows it.
    let room = |lines_so_far: usize| {
        let width = if lines_so_far == 0 {
            first_width
        } else {
            first_width - CONTINUATION_INDENT
        };
        width - 0.01
    };
    let width_of = |character: char| font.char_width(character, style.size, style.bold);
    let space = width_of(' ');
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_width = 0.0;
    for word in text.split(' ') {
        let word_width: f32 = word.chars().map(width_of).sum();
        let joined = if current.is_empty() {
            word_width
        } else {
            current_width + space + word_width
        };
        if joined <= room(lines.len()) {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
            current_width = joined;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
            current_width = 0.0;
        }
        // The word alone: split it by characters where it is too wide.
        for character in word.chars() {
            let width = width_of(character);
            if !current.is_empty() && current_width + width > room(lines.len()) {
                lines.push(std::mem::take(&mut current));
                current_width = 0.0;
            }
            current.push(character);
            current_width += width;
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::aml::ExportSection;

    fn document(rows: usize, value: &str) -> ExportDocument {
        ExportDocument {
            title: "KYC attribute history".into(),
            preamble: vec!["Account (h_normalized_payto): ABC".into()],
            sections: (0..rows)
                .map(|i| ExportSection {
                    heading: format!("Row {i} - collected 2023-11-14T22:15:23Z - source: customer"),
                    lines: vec![
                        "FORM_ID: test".into(),
                        format!("FULL_NAME: {value}"),
                        "DATE_OF_BIRTH: 2000-01-01".into(),
                    ],
                })
                .collect(),
        }
    }

    fn font() -> Font {
        Font::embedded().unwrap()
    }

    fn inside(line: &PlacedLine) -> bool {
        let right = line.x + font().text_width(&line.text, line.style.size, line.style.bold);
        line.x >= MARGIN - 0.01
            && right <= PAGE_WIDTH - MARGIN + 0.01
            && line.y >= FOOTER_Y - 0.01
            && line.y <= TOP
    }

    #[test]
    fn short_documents_take_one_page() {
        let pages = layout(&document(3, "Alice Example"), &font());
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0][0].text, "KYC attribute history");
        assert_eq!(pages[0].last().unwrap().text, "Page 1 of 1");
    }

    #[test]
    fn eighty_rows_take_several_pages_and_stay_inside() {
        let pages = layout(&document(80, "Alice Example"), &font());
        assert!(pages.len() >= 4, "{} pages", pages.len());
        for (index, page) in pages.iter().enumerate() {
            assert!(page.iter().all(inside), "page {index}");
            assert_eq!(
                page.last().unwrap().text,
                format!("Page {} of {}", index + 1, pages.len())
            );
            let body: Vec<&PlacedLine> = page.iter().filter(|l| l.y > FOOTER_Y).collect();
            assert!(body.iter().all(|l| l.y >= BOTTOM), "page {index}");
            // A page never ends with a heading.
            assert!(
                !body.last().unwrap().text.starts_with("Row "),
                "page {index}"
            );
        }
        let all: Vec<&str> = pages.iter().flatten().map(|l| l.text.as_str()).collect();
        for row in 0..80 {
            assert!(all.iter().any(|t| t.starts_with(&format!("Row {row} "))));
        }
    }

    #[test]
    fn long_values_wrap_without_losing_text() {
        let long_word = "W".repeat(300);
        let prose = "lorem ipsum dolor sit amet ".repeat(40);
        let value = format!("{prose}{long_word}");
        let pages = layout(&document(2, &value), &font());
        assert!(pages.iter().flatten().all(inside));
        let text: String = pages
            .iter()
            .flatten()
            .filter(|l| l.style == ATTRIBUTE)
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(text.replace(' ', "").contains(&long_word));
        assert_eq!(text.matches("lorem").count(), 80);
    }

    proptest::proptest! {
        #[test]
        fn wrapped_lines_fit_and_keep_every_character(text in ".{0,600}") {
            let font = font();
            let lines = wrap(&font, &text, ATTRIBUTE);
            for (index, line) in lines.iter().enumerate() {
                let indent = if index == 0 { 0.0 } else { CONTINUATION_INDENT };
                let width = font.text_width(line, ATTRIBUTE.size, false);
                proptest::prop_assert!(
                    line.chars().count() == 1 || width <= TEXT_WIDTH - ATTRIBUTE.indent - indent
                );
            }
            let kept: String = lines.concat().chars().filter(|c| *c != ' ').collect();
            let expected: String = font.printable(&text).chars().filter(|c| *c != ' ').collect();
            proptest::prop_assert_eq!(kept, expected);
        }
    }

    #[test]
    fn characters_without_a_glyph_become_code_points() {
        assert_eq!(wrap(&font(), "Zoë ク\tx", ATTRIBUTE), ["Zoë [U+30AF] x"]);
        assert_eq!(wrap(&font(), "", ATTRIBUTE), [""]);
    }
}
