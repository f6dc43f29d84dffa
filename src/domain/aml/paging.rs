//! `limit` / `offset` of the AML listings (exchange-aml.md §4.2).
//!
//! `limit` is a signed 64-bit decimal (default -20) clamped to ±1024; `offset` an unsigned
//! 64-bit row id (default 0 when going forwards, INT64_MAX backwards) clamped to INT64_MAX
//! because SQLite row ids are signed. Values outside those integer types, or not decimal at
//! all, are 400; values inside are clamped, never refused.

use super::error::AmlError;

/// The largest page, in either direction.
pub const MAX_PAGE: i64 = 1024;
const DEFAULT_LIMIT: i64 = -20;
/// `INT64_MAX`, the largest row id SQLite can hold.
const MAX_OFFSET: u64 = i64::MAX as u64;

/// Which rows of a listing to return: `limit > 0` the first `limit` rows with a row id above
/// `offset` in ascending order, `limit < 0` the first `|limit|` rows below `offset` in
/// descending order, `0` none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    limit: i64,
    offset: u64,
}

impl Page {
    /// A page with `limit` clamped to ±[`MAX_PAGE`] and `offset` to INT64_MAX.
    pub fn new(limit: i64, offset: u64) -> Page {
        Page {
            limit: limit.clamp(-MAX_PAGE, MAX_PAGE),
            offset: offset.min(MAX_OFFSET),
        }
    }

    /// In `[-1024, 1024]`.
    pub fn limit(&self) -> i64 {
        self.limit
    }

    /// In `[0, INT64_MAX]`.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The number of rows wanted.
    pub fn count(&self) -> usize {
        usize::try_from(self.limit.unsigned_abs()).unwrap_or(usize::MAX)
    }

    /// Ascending (`limit > 0`) or descending.
    pub fn is_forward(&self) -> bool {
        self.limit > 0
    }

    /// Whether `rowid` lies on the page's side of the offset (both comparisons strict).
    pub fn admits(&self, rowid: u64) -> bool {
        if self.is_forward() {
            rowid > self.offset
        } else {
            rowid < self.offset
        }
    }
}

/// The page named by a query string's `limit` and `offset` (first occurrence of each).
pub fn page_from_query(query: &[(String, String)]) -> Result<Page, AmlError> {
    let value = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let limit = match value("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => decimal::<i64>(text).ok_or_else(|| malformed("limit", text))?,
    };
    let offset = match value("offset") {
        None if limit > 0 => 0,
        None => MAX_OFFSET,
        Some(text) => decimal::<u64>(text).ok_or_else(|| malformed("offset", text))?,
    };
    Ok(Page::new(limit, offset))
}

/// Plain decimal digits with an optional leading `-` (only where the type is signed): no `+`,
/// no spaces, no empty value.
fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn malformed(name: &str, value: &str) -> AmlError {
    AmlError::ParameterMalformed(format!("{name}={value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(pairs: &[(&str, &str)]) -> Result<Page, AmlError> {
        let query: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        page_from_query(&query)
    }

    fn ok(pairs: &[(&str, &str)]) -> (i64, u64) {
        let page = page(pairs).unwrap();
        (page.limit(), page.offset())
    }

    #[test]
    fn defaults() {
        assert_eq!(ok(&[]), (-20, MAX_OFFSET));
        assert_eq!(ok(&[("limit", "5")]), (5, 0));
        assert_eq!(ok(&[("limit", "-5")]), (-5, MAX_OFFSET));
        assert_eq!(ok(&[("limit", "0")]), (0, MAX_OFFSET));
        assert_eq!(ok(&[("offset", "7")]), (-20, 7));
    }

    #[test]
    fn clamping_inside_the_integer_types() {
        assert_eq!(ok(&[("limit", "1025")]), (1024, 0));
        assert_eq!(ok(&[("limit", "-1025")]), (-1024, MAX_OFFSET));
        assert_eq!(ok(&[("limit", "9223372036854775807")]), (1024, 0));
        assert_eq!(
            ok(&[("limit", "-9223372036854775808")]),
            (-1024, MAX_OFFSET)
        );
        assert_eq!(ok(&[("offset", "9223372036854775807")]).1, MAX_OFFSET);
        assert_eq!(ok(&[("offset", "9223372036854775808")]).1, MAX_OFFSET);
        assert_eq!(ok(&[("offset", "18446744073709551615")]).1, MAX_OFFSET);
        assert_eq!(ok(&[("offset", "0")]).1, 0);
        assert_eq!(ok(&[("limit", "007")]), (7, 0));
    }

    #[test]
    fn outside_the_integer_types_or_not_decimal_is_400_26() {
        for bad in [
            ("limit", "9223372036854775808"),
            ("limit", "-9223372036854775809"),
            ("limit", ""),
            ("limit", "x"),
            ("limit", "1.5"),
            ("limit", "+5"),
            ("limit", " 5"),
            ("limit", "-"),
            ("offset", "-1"),
            ("offset", "-0"),
            ("offset", "18446744073709551616"),
            ("offset", "1e3"),
            ("offset", ""),
        ] {
            let err = page(&[bad]).unwrap_err();
            assert_eq!(err.code().number(), 26, "{bad:?}");
        }
    }

    #[test]
    fn the_first_occurrence_wins() {
        assert_eq!(ok(&[("limit", "3"), ("limit", "x")]), (3, 0));
    }

    proptest::proptest! {
        #[test]
        fn any_query_is_a_clamped_page_or_400(limit in ".{0,25}", offset in ".{0,25}") {
            if let Ok(page) = page(&[("limit", &limit), ("offset", &offset)]) {
                proptest::prop_assert!((-MAX_PAGE..=MAX_PAGE).contains(&page.limit()));
                proptest::prop_assert!(page.offset() <= MAX_OFFSET);
            }
        }

        #[test]
        fn integers_in_range_are_never_refused(limit: i64, offset: u64) {
            let page = page(&[("limit", &limit.to_string()), ("offset", &offset.to_string())])
                .unwrap();
            proptest::prop_assert_eq!(page.limit(), limit.clamp(-MAX_PAGE, MAX_PAGE));
            proptest::prop_assert_eq!(page.offset(), offset.min(MAX_OFFSET));
        }
    }

    #[test]
    fn admission_is_strict() {
        let forward = Page::new(2, 7);
        assert!(!forward.admits(7) && forward.admits(8));
        let backward = Page::new(-2, 12);
        assert!(!backward.admits(12) && backward.admits(11));
        assert_eq!(backward.count(), 2);
    }
}
