//! The embedded Unicode font, DejaVu Sans (Bitstream Vera licence, `assets/fonts/`): which
//! characters it can show, how wide they are, and the subset of it that a document embeds.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ttf_parser::{Face, GlyphId};

use crate::ports::pdf::RenderError;

const FONT_DATA: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
pub const FONT_NAME: &str = "DejaVuSans";

/// The extra width per character of bold text, drawn as fill plus a stroke of this width, in
/// 1/1000 em.
pub const BOLD_STROKE_EM: f32 = 30.0;

/// Characters below this (Latin, Greek, Cyrillic, …) have their glyph and width looked up
/// once, when the font is loaded; the rest go through the font's character map each time.
const CACHED_CHARACTERS: usize = 0x800;

pub struct Font {
    face: Face<'static>,
    /// Font units to 1/1000 em.
    scale: f32,
    /// Glyph (0: none) and advance width of each character below [`CACHED_CHARACTERS`].
    cached: Vec<(u16, f32)>,
}

impl Font {
    pub fn embedded() -> Result<Font, RenderError> {
        let face = Face::parse(FONT_DATA, 0)
            .map_err(|e| RenderError(format!("the embedded font: {e}")))?;
        let scale = 1000.0 / f32::from(face.units_per_em().max(1));
        let mut font = Font {
            face,
            scale,
            cached: Vec::new(),
        };
        font.cached = (0..CACHED_CHARACTERS)
            .map(|code| {
                let glyph = u32::try_from(code)
                    .ok()
                    .and_then(char::from_u32)
                    .and_then(|c| font.lookup(c))
                    .unwrap_or(0);
                (glyph, font.advance(glyph))
            })
            .collect();
        Ok(font)
    }

    /// The glyph of `character`, `None` when the font has none.
    pub fn glyph(&self, character: char) -> Option<u16> {
        match self.cached.get(character as usize) {
            Some((0, _)) => None,
            Some((glyph, _)) => Some(*glyph),
            None => self.lookup(character),
        }
    }

    fn lookup(&self, character: char) -> Option<u16> {
        self.face
            .glyph_index(character)
            .map(|glyph| glyph.0)
            .filter(|glyph| *glyph != 0)
    }

    /// Width of one character (0 without a glyph) in points at `size`.
    pub fn char_width(&self, character: char, size: f32, bold: bool) -> f32 {
        let units = match self.cached.get(character as usize) {
            Some((_, advance)) => *advance,
            None => self.glyph(character).map_or(0.0, |g| self.advance(g)),
        };
        let stroke = if bold { BOLD_STROKE_EM } else { 0.0 };
        (units + stroke) * size / 1000.0
    }

    /// Advance width of `glyph` in 1/1000 em.
    pub fn advance(&self, glyph: u16) -> f32 {
        self.face
            .glyph_hor_advance(GlyphId(glyph))
            .map_or(0.0, |units| f32::from(units) * self.scale)
    }

    /// `text` as the font can show it: control characters (line breaks, tabs) become spaces,
    /// a character without a glyph its code point (`[U+1F9E0]`), never a question mark.
    pub fn printable(&self, text: &str) -> String {
        let mut shown = String::with_capacity(text.len());
        for character in text.chars() {
            if character.is_control() {
                shown.push(' ');
            } else if self.glyph(character).is_some() {
                shown.push(character);
            } else {
                let _ = write!(shown, "[U+{:04X}]", u32::from(character));
            }
        }
        shown
    }

    /// Width of `text` (already [`Font::printable`]) in points at `size`.
    pub fn text_width(&self, text: &str, size: f32, bold: bool) -> f32 {
        text.chars()
            .map(|character| self.char_width(character, size, bold))
            .sum()
    }

    /// Metrics for the font descriptor, in 1/1000 em: ascent, descent, cap height, bounding box.
    pub fn metrics(&self) -> FontMetrics {
        let scale = |units: i16| f32::from(units) * self.scale;
        let bbox = self.face.global_bounding_box();
        FontMetrics {
            ascent: scale(self.face.ascender()),
            descent: scale(self.face.descender()),
            cap_height: scale(self.face.capital_height().unwrap_or(self.face.ascender())),
            bbox: [
                scale(bbox.x_min),
                scale(bbox.y_min),
                scale(bbox.x_max),
                scale(bbox.y_max),
            ],
        }
    }

    /// The font file with only the outlines of `glyphs` (glyph ids stay as they are).
    pub fn subset(&self, glyphs: &BTreeSet<u16>) -> Result<Vec<u8>, RenderError> {
        let glyphs: Vec<u16> = glyphs.iter().copied().collect();
        subsetter::subset(FONT_DATA, 0, subsetter::Profile::pdf(&glyphs))
            .map_err(|e| RenderError(format!("subsetting the font: {e}")))
    }
}

pub struct FontMetrics {
    pub ascent: f32,
    pub descent: f32,
    pub cap_height: f32,
    pub bbox: [f32; 4],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_greek_and_cyrillic_are_shown_others_as_code_points() {
        let font = Font::embedded().unwrap();
        let text = "Łukasz Čapek, Zoë Ærøskøbing, Ελένη, Юлия";
        assert_eq!(font.printable(text), text);
        assert_eq!(font.printable("a\tb\nc"), "a b c");
        assert_eq!(font.printable("Zoë 🧠"), "Zoë [U+1F9E0]");
        assert_eq!(font.printable("ク"), "[U+30AF]");
    }

    #[test]
    fn widths_come_from_the_font() {
        let font = Font::embedded().unwrap();
        let i = font.advance(font.glyph('i').unwrap());
        let w = font.advance(font.glyph('W').unwrap());
        assert!(i > 200.0 && i < 400.0, "{i}");
        assert!(w > 900.0 && w < 1100.0, "{w}");
        let width = font.text_width("iW", 10.0, false);
        assert!((width - (i + w) / 100.0).abs() < 1e-3, "{width}");
        assert!(font.text_width("iW", 10.0, true) > width);
    }

    #[test]
    fn a_subset_is_much_smaller_than_the_font() {
        let font = Font::embedded().unwrap();
        let glyphs: BTreeSet<u16> = "Alice Example"
            .chars()
            .filter_map(|c| font.glyph(c))
            .collect();
        let subset = font.subset(&glyphs).unwrap();
        assert!(subset.len() < FONT_DATA.len() / 4, "{}", subset.len());
        let parsed = Face::parse(&subset, 0).unwrap();
        assert_eq!(parsed.glyph_index('A').map(|g| g.0), font.glyph('A'));
    }
}
