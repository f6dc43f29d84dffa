//! Raw store for the GNU Taler / GNUnet INI configuration format (what
//! `taler-config` reads). It knows nothing about talerbox options: it parses,
//! merges, remembers where each value came from, expands `$` variables and
//! converts values to a few basic types.
//!
//! Decisions where the format leaves room (GNUnet's behaviour unless noted):
//! * Section names are stored lower-case and option names upper-case (ASCII
//!   only). Lookups are case-insensitive; [`Ini::dump`] prints the normalized
//!   names, not the first-seen spelling.
//! * Lines are trimmed; a line whose first character is `#` or `%` is a
//!   comment. There are no trailing comments: `A = b # c` has the value
//!   `b # c`. One pair of double quotes around a whole value is removed; there
//!   are no escapes inside.
//! * Stricter than GNUnet: a line starting with `[` must end with `]` (GNUnet
//!   would read `[x = y` as an option named `[x`), and an empty section name
//!   is an error.
//! * Directives: `@inline@ FILE`; `@inline-matching@ GLOB` (`*` and `?` in the
//!   last path component only, matching files in name order, dot files only if
//!   the pattern starts with a dot, no match is fine); `@inline-secret@ SECTION
//!   FILE` (only SECTION is taken from FILE, which may hold no directives; if
//!   FILE cannot be read the section is marked inaccessible and reading an
//!   option missing from it is an error naming the file, so an online
//!   machine without the offline key file still starts). Relative paths are
//!   relative to the real directory of the including file; text given to
//!   [`Ini::parse_str`] without `base_dir` may only include absolute paths.
//!   An included file starts outside any section; the including file's
//!   section continues after the directive.
//! * `$` expansion applies to every typed getter, not only `get_string`
//!   (GNUnet expands only file names); [`Ini::get_raw`] gives the value as
//!   written. A `$` followed by neither a name nor `{` is kept as is (there
//!   is no `$$` escape: `$$HOME` is `$` then `$HOME`). Values
//!   from the environment are used verbatim. Like GNUnet, `${NAME:=default}`
//!   and `${NAME:default}` mean the same as `${NAME:-default}`.
//! * Relative times differ from GNUnet in that a number needs a unit, a sum
//!   that overflows is an error, and terms may be written without spaces
//!   (`1h30min`).
//! * Loading is all or nothing: after an error the store is unchanged.

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[cfg(test)]
mod tests;

/// Files may include files this deep; guards against runaway recursion that
/// cycle detection cannot see (e.g. ever longer generated paths).
const MAX_INCLUDE_DEPTH: usize = 32;
/// Nesting limit for `$` expansion (variables and defaults), so a
/// pathological value cannot exhaust the stack.
const MAX_EXPANSION_DEPTH: usize = 64;
/// Section whose options serve as `$` variables.
const PATHS_SECTION: &str = "paths";

const MICROS_PER_SECOND: u64 = 1_000_000;
const MICROS_PER_MINUTE: u64 = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: u64 = 60 * MICROS_PER_MINUTE;
const MICROS_PER_DAY: u64 = 24 * MICROS_PER_HOUR;
const MICROS_PER_WEEK: u64 = 7 * MICROS_PER_DAY;
const MICROS_PER_YEAR: u64 = 365 * MICROS_PER_DAY;

/// GNUnet's relative time units (matched case-insensitively).
const TIME_UNITS: &[(&str, u64)] = &[
    ("us", 1),
    ("ms", 1_000),
    ("s", MICROS_PER_SECOND),
    ("second", MICROS_PER_SECOND),
    ("seconds", MICROS_PER_SECOND),
    ("\"", MICROS_PER_SECOND),
    ("m", MICROS_PER_MINUTE),
    ("min", MICROS_PER_MINUTE),
    ("minute", MICROS_PER_MINUTE),
    ("minutes", MICROS_PER_MINUTE),
    ("'", MICROS_PER_MINUTE),
    ("h", MICROS_PER_HOUR),
    ("hour", MICROS_PER_HOUR),
    ("hours", MICROS_PER_HOUR),
    ("d", MICROS_PER_DAY),
    ("day", MICROS_PER_DAY),
    ("days", MICROS_PER_DAY),
    ("week", MICROS_PER_WEEK),
    ("weeks", MICROS_PER_WEEK),
    ("year", MICROS_PER_YEAR),
    ("years", MICROS_PER_YEAR),
    ("a", MICROS_PER_YEAR),
];

/// Where a value was defined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// File path, or a label such as `<defaults>` or `<command line>`.
    pub source: String,
    /// 1-based line number, 0 if there is none.
    pub line: usize,
}

impl Origin {
    pub fn new(source: impl Into<String>, line: usize) -> Self {
        Self {
            source: source.into(),
            line,
        }
    }

    /// An origin without a line number.
    pub fn label(source: impl Into<String>) -> Self {
        Self::new(source, 0)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.source)
        } else {
            write!(f, "{}:{}", self.source, self.line)
        }
    }
}

/// One option of a section: normalized (upper-case) name, raw value, origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub value: String,
    pub origin: Origin,
}

/// A relative time as GNUnet writes it; the caller converts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelativeDuration {
    Micros(u64),
    Forever,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file given to [`Ini::load_file`] could not be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        path: String,
        #[source]
        cause: io::Error,
    },
    /// A file named by a directive could not be read.
    #[error("{origin}: cannot read included file {path}: {cause}")]
    Include {
        origin: Origin,
        path: String,
        #[source]
        cause: io::Error,
    },
    /// Malformed text, a bad directive, or a name rejected by [`Ini::set`].
    #[error("{origin}: {message}")]
    Syntax { origin: Origin, message: String },
    /// An option has a value its reader cannot use.
    #[error("[{section}] {option}{}: {message}", at_origin(.origin))]
    Invalid {
        section: String,
        option: String,
        origin: Option<Origin>,
        message: String,
    },
    /// A required option is not set (see [`Ini::missing`]), or it may be
    /// set in a secret file that cannot be read.
    #[error("[{section}] {option}: {reason}")]
    Unset {
        section: String,
        option: String,
        reason: String,
    },
}

fn at_origin(origin: &Option<Origin>) -> String {
    origin
        .as_ref()
        .map(|origin| format!(" at {origin}"))
        .unwrap_or_default()
}

fn syntax_error(origin: &Origin, message: impl Into<String>) -> ConfigError {
    ConfigError::Syntax {
        origin: origin.clone(),
        message: message.into(),
    }
}

fn include_error(origin: &Origin, path: &Path, cause: io::Error) -> ConfigError {
    ConfigError::Include {
        origin: origin.clone(),
        path: path.display().to_string(),
        cause,
    }
}

#[derive(Clone, Debug)]
struct Section {
    name: String,
    entries: Vec<Entry>,
    unreadable_secret: Option<UnreadableSecret>,
}

impl Section {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            entries: Vec::new(),
            unreadable_secret: None,
        }
    }

    fn entry(&self, option_key: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.name == option_key)
    }
}

/// Why an `@inline-secret@` section may lack options.
#[derive(Clone, Debug)]
struct UnreadableSecret {
    path: String,
    included_at: Origin,
    reason: String,
}

type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The configuration store: sections and options in first-seen order.
#[derive(Clone)]
pub struct Ini {
    sections: Vec<Section>,
    env: EnvLookup,
}

/// Sections and option names only: values may be secrets (client secrets, tokens, keys).
impl fmt::Debug for Ini {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sections = fmt::from_fn(|f| {
            f.debug_map()
                .entries(self.sections.iter().map(|section| {
                    let names = section.entries.iter().map(|entry| &entry.name);
                    (
                        &section.name,
                        fmt::from_fn(move |f| f.debug_list().entries(names.clone()).finish()),
                    )
                }))
                .finish()
        });
        f.debug_struct("Ini")
            .field("sections", &sections)
            .finish_non_exhaustive()
    }
}

impl Default for Ini {
    fn default() -> Self {
        Self::new()
    }
}

/// Context of the text being parsed.
struct Source<'a> {
    label: &'a str,
    base_dir: Option<&'a Path>,
    /// Set while reading an `@inline-secret@` file: only this section counts.
    only_section: Option<&'a str>,
}

impl Source<'_> {
    fn accepts(&self, section_key: &str) -> bool {
        self.only_section.is_none_or(|only| only == section_key)
    }
}

struct LoadedFile {
    label: String,
    canonical: PathBuf,
    text: String,
}

fn read_source(path: &Path) -> io::Result<LoadedFile> {
    let canonical = fs::canonicalize(path)?;
    let text = fs::read_to_string(&canonical)?;
    Ok(LoadedFile {
        label: path.display().to_string(),
        canonical,
        text,
    })
}

impl Ini {
    /// An empty store whose `$` expansion falls back to the process
    /// environment.
    pub fn new() -> Self {
        Self::with_env(|name| std::env::var(name).ok())
    }

    /// An empty store whose `$` expansion falls back to `env` instead of the
    /// process environment.
    pub fn with_env<F>(env: F) -> Self
    where
        F: Fn(&str) -> Option<String> + Send + Sync + 'static,
    {
        Self {
            sections: Vec::new(),
            env: Arc::new(env),
        }
    }

    /// Merges `text` into the store; later definitions override earlier ones.
    /// `source_label` names the text in origins and errors; `base_dir`
    /// anchors relative paths of directives.
    pub fn parse_str(
        &mut self,
        text: &str,
        source_label: &str,
        base_dir: Option<&Path>,
    ) -> Result<(), ConfigError> {
        let source = Source {
            label: source_label,
            base_dir,
            only_section: None,
        };
        self.transaction(|next| next.parse_text(text, &source, &mut Vec::new()))
    }

    /// Merges the file at `path` (and whatever it includes) into the store.
    pub fn load_file(&mut self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        let path = path.as_ref();
        self.transaction(|next| {
            let loaded = read_source(path).map_err(|cause| ConfigError::Read {
                path: path.display().to_string(),
                cause,
            })?;
            next.parse_loaded(&loaded, None, &mut Vec::new())
        })
    }

    /// Sets one option, e.g. from the command line. Names and value must be
    /// writable by [`Ini::dump`]: trimmed non-empty names, no line breaks, no
    /// `=` in the option name, which may not start with `#`, `%`, `@` or `[`.
    pub fn set(
        &mut self,
        section: &str,
        option: &str,
        value: &str,
        origin: Origin,
    ) -> Result<(), ConfigError> {
        check_section_name(section)
            .and_then(|()| check_option_name(option))
            .and_then(|()| check_value(value))
            .map_err(|message| syntax_error(&origin, message))?;
        self.store(&section_key(section), option, value, origin);
        Ok(())
    }

    /// Section names (normalized) in first-seen order.
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|section| section.name.as_str())
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.find_section(section).is_some()
    }

    /// Options of `section` in first-seen order, with raw values; empty if
    /// the section does not exist.
    pub fn options(&self, section: &str) -> &[Entry] {
        self.find_section(section)
            .map_or(&[], |section| section.entries.as_slice())
    }

    /// The option as written, without `$` expansion.
    pub fn get_raw(&self, section: &str, option: &str) -> Option<&Entry> {
        self.find_section(section)?.entry(&option_key(option))
    }

    /// The value after `$` expansion.
    pub fn get_string(&self, section: &str, option: &str) -> Result<Option<String>, ConfigError> {
        self.get_parsed(section, option, Ok)
    }

    /// `YES` or `NO`, case-insensitively.
    pub fn get_yes_no(&self, section: &str, option: &str) -> Result<Option<bool>, ConfigError> {
        self.get_parsed(section, option, |value| parse_yes_no(&value))
    }

    pub fn get_number(&self, section: &str, option: &str) -> Result<Option<u64>, ConfigError> {
        self.get_parsed(section, option, |value| parse_number(&value))
    }

    /// GNUnet relative time: `forever`, or `NUMBER UNIT` terms that are summed.
    pub fn get_relative_time(
        &self,
        section: &str,
        option: &str,
    ) -> Result<Option<RelativeDuration>, ConfigError> {
        self.get_parsed(section, option, |value| {
            parse_relative_time(&value)
                .map_err(|problem| format!("invalid relative time {value:?}: {problem}"))
        })
    }

    /// One of `choices`, matched case-insensitively; returns the choice as
    /// spelled in `choices`.
    pub fn get_choice(
        &self,
        section: &str,
        option: &str,
        choices: &[&str],
    ) -> Result<Option<String>, ConfigError> {
        self.get_parsed(section, option, |value| parse_choice(&value, choices))
    }

    /// An error for a value the caller found unusable, pointing at the
    /// option's origin.
    pub fn invalid(&self, section: &str, option: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            section: section_key(section),
            option: option_key(option),
            origin: self
                .get_raw(section, option)
                .map(|entry| entry.origin.clone()),
            message: message.into(),
        }
    }

    /// An error for a required option that is not set.
    pub fn missing(&self, section: &str, option: &str) -> ConfigError {
        let reason = match self.unreadable_secret(section) {
            Some(secret) => describe_unreadable(section, secret),
            None => "required option is not set".to_owned(),
        };
        unset_error(section, option, reason)
    }

    /// The store in the format it was read from (like `taler-config --dump`):
    /// raw values, sections and options in first-seen order. Parsing the
    /// result gives back the same sections, options and values.
    pub fn dump(&self) -> String {
        self.dump_with(false)
    }

    /// Like [`Ini::dump`], with a comment above each option naming where its value came from
    /// (a file and line, or `<defaults>` for the embedded defaults).
    pub fn dump_with_origins(&self) -> String {
        self.dump_with(true)
    }

    fn dump_with(&self, origins: bool) -> String {
        let mut out = String::new();
        for (index, section) in self.sections.iter().enumerate() {
            if index > 0 {
                out.push('\n');
            }
            out.push('[');
            out.push_str(&section.name);
            out.push_str("]\n");
            for entry in &section.entries {
                if origins {
                    let origin = &entry.origin;
                    out.push_str("# from ");
                    out.push_str(&origin.source);
                    if origin.line > 0 {
                        out.push_str(&format!(":{}", origin.line));
                    }
                    out.push('\n');
                }
                out.push_str(&entry.name);
                out.push_str(" = ");
                out.push_str(&quote_for_dump(&entry.value));
                out.push('\n');
            }
        }
        out
    }

    /// Applies `load` to a copy and keeps it only on success.
    fn transaction(
        &mut self,
        load: impl FnOnce(&mut Ini) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        let mut next = self.clone();
        load(&mut next)?;
        *self = next;
        Ok(())
    }

    fn parse_loaded(
        &mut self,
        file: &LoadedFile,
        only_section: Option<&str>,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let source = Source {
            label: &file.label,
            base_dir: file.canonical.parent(),
            only_section,
        };
        stack.push(file.canonical.clone());
        let result = self.parse_text(&file.text, &source, stack);
        stack.pop();
        result
    }

    /// `stack` holds the canonical paths of the files being parsed, outermost
    /// first, to detect inclusion cycles.
    fn parse_text(
        &mut self,
        text: &str,
        source: &Source<'_>,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let mut current_section = None;
        for (index, raw_line) in text.lines().enumerate() {
            let origin = Origin::new(source.label, index + 1);
            let line = classify(raw_line).map_err(|message| syntax_error(&origin, message))?;
            self.apply_line(line, &origin, &mut current_section, source, stack)?;
        }
        Ok(())
    }

    fn apply_line(
        &mut self,
        line: Line<'_>,
        origin: &Origin,
        current_section: &mut Option<String>,
        source: &Source<'_>,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        match line {
            Line::Blank => Ok(()),
            Line::Header(name) => {
                let key = section_key(name);
                if source.accepts(&key) {
                    self.section_mut(&key);
                }
                *current_section = Some(key);
                Ok(())
            }
            Line::Assign { key, value } => {
                let Some(section) = current_section.as_deref() else {
                    let message = format!("option {key:?} appears before any [section] header");
                    return Err(syntax_error(origin, message));
                };
                if source.accepts(section) {
                    self.store(section, key, value, origin.clone());
                }
                Ok(())
            }
            Line::Directive { name, argument } => {
                self.apply_directive(name, argument, origin, source, stack)
            }
        }
    }

    fn apply_directive(
        &mut self,
        name: &str,
        argument: &str,
        origin: &Origin,
        source: &Source<'_>,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        if source.only_section.is_some() {
            let message = "directives are not allowed in a file read by @inline-secret@";
            return Err(syntax_error(origin, message));
        }
        match name.to_ascii_lowercase().as_str() {
            "inline" => {
                let path = resolve_path(argument, "@inline@", origin, source)?;
                self.include_file(&path, origin, None, stack)
            }
            "inline-matching" => self.include_matching(argument, origin, source, stack),
            "inline-secret" => self.include_secret(argument, origin, source, stack),
            _ => Err(syntax_error(origin, format!("unknown directive @{name}@"))),
        }
    }

    fn include_file(
        &mut self,
        path: &Path,
        included_at: &Origin,
        only_section: Option<&str>,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let loaded = read_source(path).map_err(|cause| include_error(included_at, path, cause))?;
        check_nesting(&loaded.canonical, included_at, stack)?;
        self.parse_loaded(&loaded, only_section, stack)
    }

    fn include_matching(
        &mut self,
        argument: &str,
        origin: &Origin,
        source: &Source<'_>,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let pattern = resolve_path(argument, "@inline-matching@", origin, source)?;
        let (dir, name_pattern) =
            split_glob(&pattern).map_err(|message| syntax_error(origin, message))?;
        let files =
            matching_files(dir, name_pattern).map_err(|cause| include_error(origin, dir, cause))?;
        for file in files {
            self.include_file(&file, origin, None, stack)?;
        }
        Ok(())
    }

    fn include_secret(
        &mut self,
        argument: &str,
        origin: &Origin,
        source: &Source<'_>,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let Some((section, file)) = argument.split_once(char::is_whitespace) else {
            let message = "@inline-secret@ needs a section name and a file name";
            return Err(syntax_error(origin, message));
        };
        let section = section_key(section);
        let path = resolve_path(file.trim(), "@inline-secret@", origin, source)?;
        // GNUnet creates the section even when the file is unreadable.
        self.section_mut(&section).unreadable_secret = None;
        match read_source(&path) {
            Ok(loaded) => {
                check_nesting(&loaded.canonical, origin, stack)?;
                self.parse_loaded(&loaded, Some(&section), stack)
            }
            Err(cause) => {
                self.section_mut(&section).unreadable_secret = Some(UnreadableSecret {
                    path: path.display().to_string(),
                    included_at: origin.clone(),
                    reason: cause.to_string(),
                });
                Ok(())
            }
        }
    }

    fn find_section(&self, section: &str) -> Option<&Section> {
        let key = section_key(section);
        self.sections.iter().find(|found| found.name == key)
    }

    fn section_mut(&mut self, key: &str) -> &mut Section {
        let index = match self.sections.iter().position(|found| found.name == key) {
            Some(index) => index,
            None => {
                self.sections.push(Section::new(key));
                self.sections.len() - 1
            }
        };
        &mut self.sections[index]
    }

    /// Stores a value under a normalized section key; an existing option
    /// keeps its position but takes the new value and origin.
    fn store(&mut self, section_key: &str, option: &str, value: &str, origin: Origin) {
        let name = option_key(option);
        let entries = &mut self.section_mut(section_key).entries;
        match entries.iter_mut().find(|entry| entry.name == name) {
            Some(entry) => {
                entry.value = value.to_owned();
                entry.origin = origin;
            }
            None => entries.push(Entry {
                name,
                value: value.to_owned(),
                origin,
            }),
        }
    }

    fn unreadable_secret(&self, section: &str) -> Option<&UnreadableSecret> {
        self.find_section(section)?.unreadable_secret.as_ref()
    }

    /// The entry, `None` if unset, or an error if it may hide in an
    /// unreadable secret file.
    fn lookup(&self, section: &str, option: &str) -> Result<Option<&Entry>, ConfigError> {
        if let Some(entry) = self.get_raw(section, option) {
            return Ok(Some(entry));
        }
        match self.unreadable_secret(section) {
            Some(secret) => Err(unset_error(
                section,
                option,
                describe_unreadable(section, secret),
            )),
            None => Ok(None),
        }
    }

    /// Looks up, expands and converts an option, attributing any failure to
    /// the option and its origin.
    fn get_parsed<T>(
        &self,
        section: &str,
        option: &str,
        parse: impl FnOnce(String) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(entry) = self.lookup(section, option)? else {
            return Ok(None);
        };
        let invalid = |message| ConfigError::Invalid {
            section: section_key(section),
            option: entry.name.clone(),
            origin: Some(entry.origin.clone()),
            message,
        };
        let expanded = Expander::new(self)
            .expand(&entry.value, 0)
            .map_err(invalid)?;
        parse(expanded).map(Some).map_err(invalid)
    }
}

fn section_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn option_key(name: &str) -> String {
    name.to_ascii_uppercase()
}

fn unset_error(section: &str, option: &str, reason: String) -> ConfigError {
    ConfigError::Unset {
        section: section_key(section),
        option: option_key(option),
        reason,
    }
}

fn describe_unreadable(section: &str, secret: &UnreadableSecret) -> String {
    format!(
        "not set, and section [{}] comes from secret file {} (@inline-secret@ at {}), \
         which cannot be read: {}",
        section_key(section),
        secret.path,
        secret.included_at,
        secret.reason
    )
}

/// One line of configuration text.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    Blank,
    Header(&'a str),
    Assign { key: &'a str, value: &'a str },
    Directive { name: &'a str, argument: &'a str },
}

fn classify(raw_line: &str) -> Result<Line<'_>, String> {
    let line = raw_line.trim();
    if line.is_empty() || line.starts_with(['#', '%']) {
        return Ok(Line::Blank);
    }
    if let Some(rest) = line.strip_prefix('@') {
        return classify_directive(rest);
    }
    if let Some(rest) = line.strip_prefix('[') {
        return classify_header(rest);
    }
    classify_assignment(line)
}

fn classify_directive(after_at: &str) -> Result<Line<'_>, String> {
    match after_at.split_once('@') {
        Some((name, argument)) => Ok(Line::Directive {
            name,
            argument: argument.trim(),
        }),
        None => Err("expected \"@directive@ ARGUMENT\"".to_owned()),
    }
}

fn classify_header(after_bracket: &str) -> Result<Line<'_>, String> {
    let Some(name) = after_bracket.strip_suffix(']') else {
        return Err("expected \"]\" at the end of the section header".to_owned());
    };
    match name.trim() {
        "" => Err("empty section name".to_owned()),
        name => Ok(Line::Header(name)),
    }
}

fn classify_assignment(line: &str) -> Result<Line<'_>, String> {
    let Some((key, value)) = line.split_once('=') else {
        return Err("expected \"KEY = VALUE\" or \"[section]\"".to_owned());
    };
    match key.trim() {
        "" => Err("missing option name before \"=\"".to_owned()),
        key => Ok(Line::Assign {
            key,
            value: unquote(value.trim()),
        }),
    }
}

/// Removes one pair of double quotes around the whole value.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

/// Quotes a value whose surrounding whitespace or quotes parsing would
/// remove; `#` is quoted too so the line cannot be mistaken for a comment
/// by other readers.
fn quote_for_dump(value: &str) -> Cow<'_, str> {
    if value.trim() != value || unquote(value) != value || value.contains('#') {
        Cow::Owned(format!("\"{value}\""))
    } else {
        Cow::Borrowed(value)
    }
}

fn check_section_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.trim() != name || name.contains('\n') {
        return Err(format!("invalid section name {name:?}"));
    }
    Ok(())
}

fn check_option_name(name: &str) -> Result<(), String> {
    let bad_start = name.starts_with(['#', '%', '@', '[']);
    if name.is_empty() || name.trim() != name || bad_start || name.contains(['=', '\n']) {
        return Err(format!("invalid option name {name:?}"));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), String> {
    if value.contains('\n') {
        return Err(format!("value {value:?} contains a line break"));
    }
    Ok(())
}

fn resolve_path(
    argument: &str,
    directive: &str,
    origin: &Origin,
    source: &Source<'_>,
) -> Result<PathBuf, ConfigError> {
    if argument.is_empty() {
        return Err(syntax_error(
            origin,
            format!("{directive} needs a file name"),
        ));
    }
    let path = Path::new(argument);
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    match source.base_dir {
        Some(dir) => Ok(dir.join(path)),
        None => Err(syntax_error(
            origin,
            format!(
                "{directive} with relative path {argument:?} needs a base directory, \
                 and {} has none",
                source.label
            ),
        )),
    }
}

fn check_nesting(
    canonical: &Path,
    included_at: &Origin,
    stack: &[PathBuf],
) -> Result<(), ConfigError> {
    if stack.iter().any(|open| open == canonical) {
        let chain: Vec<String> = stack
            .iter()
            .map(|open| open.as_path())
            .chain([canonical])
            .map(|path| path.display().to_string())
            .collect();
        let message = format!("inclusion cycle: {}", chain.join(" -> "));
        return Err(syntax_error(included_at, message));
    }
    if stack.len() >= MAX_INCLUDE_DEPTH {
        let message = format!("files included more than {MAX_INCLUDE_DEPTH} levels deep");
        return Err(syntax_error(included_at, message));
    }
    Ok(())
}

/// Splits a glob into its literal directory and file name pattern.
fn split_glob(pattern: &Path) -> Result<(&Path, &str), String> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Err(format!("{} names no file", pattern.display()));
    };
    let Some(name) = name.to_str() else {
        return Err(format!("{} is not valid UTF-8", pattern.display()));
    };
    if dir.to_string_lossy().contains(['*', '?']) {
        return Err(format!(
            "{}: wildcards are supported only in the last path component",
            pattern.display()
        ));
    }
    Ok((dir, name))
}

/// Files in `dir` whose names match `pattern`, sorted by name; a missing
/// directory matches nothing, like a shell glob.
fn matching_files(dir: &Path, pattern: &str) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut names = Vec::new();
    for entry in entries {
        if let Some(name) = entry?.file_name().to_str() {
            let hidden = name.starts_with('.') && !pattern.starts_with('.');
            if !hidden && wildcard_matches(pattern, name) {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    let paths = names.into_iter().map(|name| dir.join(name));
    Ok(paths.filter(|path| path.is_file()).collect())
}

/// Shell-style matching with `*` (any run) and `?` (one character).
fn wildcard_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    // Position of the last `*` and the name position it currently absorbs up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p, n));
                p += 1;
            }
            Some(&c) if c == '?' || Some(&c) == name.get(n) => {
                p += 1;
                n += 1;
            }
            _ => match backtrack {
                Some((star, absorbed)) => {
                    backtrack = Some((star, absorbed + 1));
                    p = star + 1;
                    n = absorbed + 1;
                }
                None => return false,
            },
        }
    }
    pattern.iter().skip(p).all(|&c| c == '*')
}

/// `$` expansion against `[PATHS]`, then the environment.
struct Expander<'a> {
    ini: &'a Ini,
    /// `[PATHS]` variables being expanded, to report cycles.
    active: Vec<String>,
}

impl<'a> Expander<'a> {
    fn new(ini: &'a Ini) -> Self {
        Self {
            ini,
            active: Vec::new(),
        }
    }

    fn expand(&mut self, text: &str, depth: usize) -> Result<String, String> {
        if depth > MAX_EXPANSION_DEPTH {
            return Err(format!(
                "$-expansion nested more than {MAX_EXPANSION_DEPTH} levels deep"
            ));
        }
        let mut expanded = String::with_capacity(text.len());
        let mut rest = text;
        while let Some((before, after_dollar)) = rest.split_once('$') {
            expanded.push_str(before);
            rest = self.expand_reference(after_dollar, depth, &mut expanded)?;
        }
        expanded.push_str(rest);
        Ok(expanded)
    }

    /// Appends the expansion of the reference following a `$` to `out` and
    /// returns the text after the reference.
    fn expand_reference<'t>(
        &mut self,
        after_dollar: &'t str,
        depth: usize,
        out: &mut String,
    ) -> Result<&'t str, String> {
        if let Some(braced) = after_dollar.strip_prefix('{') {
            return self.expand_braced(braced, depth, out);
        }
        let name_len = after_dollar
            .find(|c: char| !is_name_char(c))
            .unwrap_or(after_dollar.len());
        let (name, rest) = after_dollar.split_at(name_len);
        if name.is_empty() {
            out.push('$');
        } else {
            out.push_str(&self.resolve(name, None, depth)?);
        }
        Ok(rest)
    }

    fn expand_braced<'t>(
        &mut self,
        braced: &'t str,
        depth: usize,
        out: &mut String,
    ) -> Result<&'t str, String> {
        let Some(close) = closing_brace(braced) else {
            return Err(format!("missing \"}}\" after \"${{{braced}\""));
        };
        let (inner, closing_and_rest) = braced.split_at(close);
        let (name, default) = split_default(inner);
        if name.is_empty() || !name.chars().all(is_name_char) {
            return Err(format!(
                "invalid variable name {name:?} in \"${{{inner}}}\""
            ));
        }
        out.push_str(&self.resolve(name, default, depth)?);
        Ok(closing_and_rest.get(1..).unwrap_or_default())
    }

    fn resolve(
        &mut self,
        name: &str,
        default: Option<&str>,
        depth: usize,
    ) -> Result<String, String> {
        if let Some(entry) = self.ini.get_raw(PATHS_SECTION, name) {
            return self.expand_path_variable(&entry.value, name, depth);
        }
        if let Some(value) = (self.ini.env)(name) {
            return Ok(value);
        }
        match default {
            Some(default) => self.expand(default, depth + 1),
            None => Err(format!(
                "unknown variable ${name}: set it in [PATHS] or in the environment"
            )),
        }
    }

    fn expand_path_variable(
        &mut self,
        raw: &str,
        name: &str,
        depth: usize,
    ) -> Result<String, String> {
        let key = option_key(name);
        if self.active.contains(&key) {
            return Err(format!(
                "variable cycle in [PATHS]: {} -> {key}",
                self.active.join(" -> ")
            ));
        }
        self.active.push(key);
        let expanded = self.expand(raw, depth + 1);
        self.active.pop();
        expanded
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Byte index of the `}` closing an already opened `{`, honouring nesting.
fn closing_brace(text: &str) -> Option<usize> {
    let mut open = 1usize;
    for (index, c) in text.char_indices() {
        match c {
            '{' => open += 1,
            '}' => {
                open -= 1;
                if open == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits `NAME:-default` (also `NAME:=default`, `NAME:default`).
fn split_default(inner: &str) -> (&str, Option<&str>) {
    match inner.split_once(':') {
        Some((name, rest)) => (name, Some(rest.strip_prefix(['-', '=']).unwrap_or(rest))),
        None => (inner, None),
    }
}

fn parse_yes_no(value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err(format!("expected YES or NO, got {value:?}"))
    }
}

fn parse_number(value: &str) -> Result<u64, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected a non-negative integer, got {value:?}"));
    }
    value
        .parse()
        .map_err(|_| format!("number {value} is too large (maximum {})", u64::MAX))
}

fn parse_choice(value: &str, choices: &[&str]) -> Result<String, String> {
    match choices
        .iter()
        .find(|choice| choice.eq_ignore_ascii_case(value))
    {
        Some(choice) => Ok((*choice).to_owned()),
        None => {
            let quoted: Vec<String> = choices.iter().map(|choice| format!("{choice:?}")).collect();
            Err(format!(
                "expected one of {}, got {value:?}",
                quoted.join(", ")
            ))
        }
    }
}

/// Word of a relative time: a run of digits or a run of other
/// non-whitespace characters (a unit).
#[derive(Debug, PartialEq, Eq)]
enum TimeToken<'a> {
    Number(&'a str),
    Unit(&'a str),
}

fn time_tokens(text: &str) -> Vec<TimeToken<'_>> {
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while let Some(first) = rest.chars().next() {
        let digits = first.is_ascii_digit();
        let end = rest
            .find(|c: char| c.is_whitespace() || c.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        tokens.push(if digits {
            TimeToken::Number(word)
        } else {
            TimeToken::Unit(word)
        });
        rest = tail.trim_start();
    }
    tokens
}

fn parse_relative_time(text: &str) -> Result<RelativeDuration, String> {
    if text.trim().eq_ignore_ascii_case("forever") {
        return Ok(RelativeDuration::Forever);
    }
    let mut tokens = time_tokens(text).into_iter();
    let mut total: u64 = 0;
    let mut any_term = false;
    while let Some(token) = tokens.next() {
        let digits = match token {
            TimeToken::Number(digits) => digits,
            TimeToken::Unit(unit) => return Err(format!("expected a number before {unit:?}")),
        };
        let Some(TimeToken::Unit(unit)) = tokens.next() else {
            return Err(format!("missing unit after {digits}"));
        };
        let term = time_term(digits, unit)?;
        total = total.checked_add(term).ok_or("value is too large")?;
        any_term = true;
    }
    if any_term {
        Ok(RelativeDuration::Micros(total))
    } else {
        Err("empty value".to_owned())
    }
}

fn time_term(digits: &str, unit: &str) -> Result<u64, String> {
    let factor = TIME_UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(unit))
        .map(|(_, factor)| *factor)
        .ok_or_else(|| format!("unknown time unit {unit:?}"))?;
    digits
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(factor))
        .ok_or_else(|| "value is too large".to_owned())
}
