//! What the standard Helvetica fonts can show and how wide it is: enough to wrap text so that
//! it never runs off a page. Widths are Adobe's Helvetica metrics in 1/1000 em.

/// Printed for characters that WinAnsiEncoding cannot represent.
pub const REPLACEMENT: char = '?';

/// Helvetica advance widths of ASCII 0x20..=0x7E.
const HELVETICA_ASCII: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
    278, // ' '..'/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584,
    556, // '0'..'?'
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722,
    778, // '@'..'O'
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469,
    556, // 'P'..'_'
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556,
    556, // '`'..'o'
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // 'p'..'~'
];

/// No Helvetica glyph outside ASCII is wider than this (Æ, Œ, ‰, …, ™ are 1000).
const WIDEST_OTHER: u16 = 1000;

/// Helvetica-Bold is at most this much wider than Helvetica per glyph (i, j, l: 278/222);
/// headings are measured with it, which errs on the short side.
const BOLD_FACTOR: f32 = 1.3;

/// The WinAnsiEncoding characters of 0x80..=0x9F (the rest is ASCII and Latin-1).
const WIN_ANSI_EXTRA: &str = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ";

/// `character` if the standard fonts can show it, otherwise [`REPLACEMENT`]; control
/// characters (line breaks, tabs) become spaces.
pub fn printable(character: char) -> char {
    match character {
        ' '..='~' | '\u{A0}'..='\u{FF}' => character,
        c if c.is_control() => ' ',
        c if WIN_ANSI_EXTRA.contains(c) => c,
        _ => REPLACEMENT,
    }
}

/// The width of `character` (already [`printable`]) in 1/1000 em.
fn width(character: char) -> u16 {
    let index = (character as usize).wrapping_sub(0x20);
    HELVETICA_ASCII.get(index).copied().unwrap_or(WIDEST_OTHER)
}

/// The width of `text` in points at `size` points, an upper bound for bold text.
pub fn text_width(text: &str, size: f32, bold: bool) -> f32 {
    let units: u32 = text.chars().map(|c| u32::from(width(c))).sum();
    let regular = units as f32 * size / 1000.0;
    if bold { regular * BOLD_FACTOR } else { regular }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_characters() {
        assert_eq!(printable('A'), 'A');
        assert_eq!(printable('é'), 'é');
        assert_eq!(printable('€'), '€');
        assert_eq!(printable('\n'), ' ');
        assert_eq!(printable('ク'), REPLACEMENT);
        assert_eq!(printable('😀'), REPLACEMENT);
    }

    #[test]
    fn widths() {
        assert_eq!(width(' '), 278);
        assert_eq!(width('@'), 1015);
        assert_eq!(width('~'), 584);
        assert_eq!(width('W'), 944);
        assert_eq!(width('é'), WIDEST_OTHER);
        assert!((text_width("ii", 10.0, false) - 4.44).abs() < 1e-4);
        assert!(text_width("ii", 10.0, true) > 2.0 * 2.78);
    }
}
