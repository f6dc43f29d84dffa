use super::*;
use std::collections::HashMap;
use std::fs;

const LABEL: &str = "/etc/talerbox.conf";

/// A store with an empty environment, so tests do not depend on the process.
fn ini_without_env() -> Ini {
    Ini::with_env(|_| None)
}

fn ini_with_env(vars: &[(&str, &str)]) -> Ini {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    Ini::with_env(move |name| map.get(name).cloned())
}

fn parsed(text: &str) -> Ini {
    let mut ini = ini_without_env();
    ini.parse_str(text, LABEL, None).expect("valid test config");
    ini
}

fn parse_error(text: &str) -> String {
    let mut ini = ini_without_env();
    ini.parse_str(text, LABEL, None)
        .expect_err("invalid test config")
        .to_string()
}

fn raw(ini: &Ini, section: &str, option: &str) -> Option<String> {
    ini.get_raw(section, option)
        .map(|entry| entry.value.clone())
}

fn string(ini: &Ini, section: &str, option: &str) -> Option<String> {
    ini.get_string(section, option).expect("expandable value")
}

/// Sections with their (option, value) pairs, ignoring origins.
fn contents(ini: &Ini) -> Vec<(String, Vec<(String, String)>)> {
    ini.sections()
        .map(|section| {
            let options = ini
                .options(section)
                .iter()
                .map(|entry| (entry.name.clone(), entry.value.clone()))
                .collect();
            (section.to_owned(), options)
        })
        .collect()
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("create test directory");
    }
    fs::write(path, text).expect("write test file");
}

// ---------------------------------------------------------------- parsing

#[test]
fn parses_sections_options_comments_and_blank_lines() {
    let ini = parsed(
        "# leading comment\n\
         % percent comment\n\
         \n\
         [bank]\n\
         \x20  # indented comment\n\
         \t% indented percent comment\n\
         CURRENCY = KUDOS\n\
         \x20 BASE_URL=http://localhost:8080/  \n\
         \n\
         [exchange]\n\
         PORT\t=\t8081\t\n",
    );
    assert_eq!(ini.sections().collect::<Vec<_>>(), ["bank", "exchange"]);
    assert_eq!(raw(&ini, "bank", "CURRENCY").as_deref(), Some("KUDOS"));
    assert_eq!(
        raw(&ini, "bank", "BASE_URL").as_deref(),
        Some("http://localhost:8080/")
    );
    assert_eq!(raw(&ini, "exchange", "PORT").as_deref(), Some("8081"));
}

#[test]
fn handles_crlf_line_endings() {
    let ini = parsed("[bank]\r\nCURRENCY = KUDOS\r\n");
    assert_eq!(raw(&ini, "bank", "currency").as_deref(), Some("KUDOS"));
}

#[test]
fn removes_one_pair_of_surrounding_quotes() {
    let ini = parsed(
        "[s]\n\
         DESCRIPTION = \"Confirm your e-mail\"\n\
         SPACES = \"  padded  \"\n\
         EMPTY = \"\"\n\
         DOUBLE = \"\"x\"\"\n\
         LONE = \"\n\
         INNER = a \"b\" c\n\
         OPEN = \"abc\n",
    );
    assert_eq!(
        raw(&ini, "s", "DESCRIPTION").as_deref(),
        Some("Confirm your e-mail")
    );
    assert_eq!(raw(&ini, "s", "SPACES").as_deref(), Some("  padded  "));
    assert_eq!(raw(&ini, "s", "EMPTY").as_deref(), Some(""));
    assert_eq!(raw(&ini, "s", "DOUBLE").as_deref(), Some("\"x\""));
    assert_eq!(raw(&ini, "s", "LONE").as_deref(), Some("\""));
    assert_eq!(raw(&ini, "s", "INNER").as_deref(), Some("a \"b\" c"));
    assert_eq!(raw(&ini, "s", "OPEN").as_deref(), Some("\"abc"));
}

#[test]
fn keeps_hash_and_equals_inside_values() {
    let ini = parsed("[s]\nA = b # not a comment\nB = x=y=z\nC =\n");
    assert_eq!(raw(&ini, "s", "A").as_deref(), Some("b # not a comment"));
    assert_eq!(raw(&ini, "s", "B").as_deref(), Some("x=y=z"));
    assert_eq!(raw(&ini, "s", "C").as_deref(), Some(""));
}

#[test]
fn names_are_case_insensitive_and_stored_normalized() {
    let ini = parsed("[Bank]\nCurrency = KUDOS\n[BANK]\nport = 1\n");
    assert_eq!(ini.sections().collect::<Vec<_>>(), ["bank"]);
    let names: Vec<&str> = ini
        .options("bAnK")
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["CURRENCY", "PORT"]);
    assert_eq!(raw(&ini, "BANK", "currency").as_deref(), Some("KUDOS"));
    assert_eq!(raw(&ini, "bank", "Port").as_deref(), Some("1"));
    assert!(ini.has_section("BaNk"));
    assert!(!ini.has_section("exchange"));
}

#[test]
fn section_names_are_trimmed_inside_brackets() {
    let ini = parsed("[  exchange-account-1 ]\nENABLE_CREDIT = YES\n");
    assert!(ini.has_section("exchange-account-1"));
}

#[test]
fn header_without_options_creates_section() {
    let ini = parsed("[empty]\n[full]\nA = 1\n");
    assert!(ini.has_section("empty"));
    assert!(ini.options("empty").is_empty());
    assert!(ini.options("missing").is_empty());
}

#[test]
fn later_definition_overrides_and_keeps_first_position() {
    let mut ini = ini_without_env();
    ini.parse_str("[s]\nA = 1\nB = 2\n", "<defaults>", None)
        .expect("defaults");
    ini.parse_str("[s]\nA = 3\n[t]\nC = 4\n", "/etc/user.conf", None)
        .expect("user file");
    assert_eq!(
        contents(&ini),
        [
            (
                "s".to_owned(),
                vec![
                    ("A".to_owned(), "3".to_owned()),
                    ("B".to_owned(), "2".to_owned())
                ]
            ),
            ("t".to_owned(), vec![("C".to_owned(), "4".to_owned())]),
        ]
    );
    let a = ini.get_raw("s", "A").expect("A is set");
    assert_eq!(a.origin, Origin::new("/etc/user.conf", 2));
    let b = ini.get_raw("s", "B").expect("B is set");
    assert_eq!(b.origin, Origin::new("<defaults>", 3));
}

#[test]
fn override_within_one_text() {
    let ini = parsed("[s]\nA = 1\na = 2\n");
    assert_eq!(raw(&ini, "s", "A").as_deref(), Some("2"));
    assert_eq!(ini.options("s").len(), 1);
}

#[test]
fn records_origin_of_each_value() {
    let ini = parsed("\n[s]\n# c\nA = 1\n");
    let entry = ini.get_raw("s", "a").expect("A is set");
    assert_eq!(entry.origin, Origin::new(LABEL, 4));
    assert_eq!(entry.origin.to_string(), "/etc/talerbox.conf:4");
    assert_eq!(
        Origin::label("<command line>").to_string(),
        "<command line>"
    );
}

#[test]
fn option_before_any_section_is_an_error() {
    assert_eq!(
        parse_error("# comment\nA = 1\n"),
        "/etc/talerbox.conf:2: option \"A\" appears before any [section] header"
    );
}

#[test]
fn malformed_line_names_origin_and_line() {
    assert_eq!(
        parse_error("[s]\nA = 1\n\n\n\n\njust words\n"),
        "/etc/talerbox.conf:7: expected \"KEY = VALUE\" or \"[section]\""
    );
}

#[test]
fn malformed_headers_and_keys_are_errors() {
    assert_eq!(
        parse_error("[s\n"),
        "/etc/talerbox.conf:1: expected \"]\" at the end of the section header"
    );
    assert_eq!(
        parse_error("[s]\n[x = y\n"),
        "/etc/talerbox.conf:2: expected \"]\" at the end of the section header"
    );
    assert_eq!(
        parse_error("[ ]\n"),
        "/etc/talerbox.conf:1: empty section name"
    );
    assert_eq!(
        parse_error("[s]\n = v\n"),
        "/etc/talerbox.conf:2: missing option name before \"=\""
    );
}

#[test]
fn malformed_and_unknown_directives_are_errors() {
    assert_eq!(
        parse_error("@inline x.conf\n"),
        "/etc/talerbox.conf:1: expected \"@directive@ ARGUMENT\""
    );
    assert_eq!(
        parse_error("[s]\n@include@ x.conf\n"),
        "/etc/talerbox.conf:2: unknown directive @include@"
    );
    assert_eq!(
        parse_error("@inline@\n"),
        "/etc/talerbox.conf:1: @inline@ needs a file name"
    );
    assert_eq!(
        parse_error("@inline-secret@ onlysection\n"),
        "/etc/talerbox.conf:1: @inline-secret@ needs a section name and a file name"
    );
}

#[test]
fn failed_parse_leaves_store_unchanged() {
    let mut ini = parsed("[s]\nA = 1\n");
    let result = ini.parse_str("[s]\nA = 2\nB = 3\nbroken\n", "<x>", None);
    assert!(result.is_err());
    assert_eq!(raw(&ini, "s", "A").as_deref(), Some("1"));
    assert_eq!(raw(&ini, "s", "B"), None);
}

#[test]
fn classify_recognizes_every_line_kind() {
    assert_eq!(classify("  "), Ok(Line::Blank));
    assert_eq!(classify(" # x = y"), Ok(Line::Blank));
    assert_eq!(classify("%x"), Ok(Line::Blank));
    assert_eq!(classify(" [a b] "), Ok(Line::Header("a b")));
    assert_eq!(
        classify("K = \"v\""),
        Ok(Line::Assign {
            key: "K",
            value: "v"
        })
    );
    assert_eq!(
        classify("@INLINE@  a b.conf "),
        Ok(Line::Directive {
            name: "INLINE",
            argument: "a b.conf"
        })
    );
}

// ---------------------------------------------------------------- files

#[test]
fn load_file_reads_file_and_names_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("talerbox.conf");
    write(&path, "[bank]\nCURRENCY = KUDOS\n");
    let mut ini = ini_without_env();
    ini.load_file(&path).expect("load");
    let entry = ini.get_raw("bank", "CURRENCY").expect("set");
    assert_eq!(entry.origin, Origin::new(path.display().to_string(), 2));
}

#[test]
fn load_file_error_names_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing.conf");
    let mut ini = ini_without_env();
    let error = ini.load_file(&path).expect_err("missing file");
    assert!(matches!(error, ConfigError::Read { .. }));
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("cannot read {}: ", path.display())),
        "{text}"
    );
}

#[test]
fn parse_error_in_file_names_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.conf");
    write(&path, "[s]\nA = 1\noops\n");
    let mut ini = ini_without_env();
    let error = ini.load_file(&path).expect_err("bad file");
    assert_eq!(
        error.to_string(),
        format!(
            "{}:3: expected \"KEY = VALUE\" or \"[section]\"",
            path.display()
        )
    );
}

#[test]
fn inline_resolves_relative_to_including_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    write(
        &main,
        "[s]\nA = main\nB = main\n@inline@ sub/inc.conf\nC = after\n",
    );
    write(
        &dir.path().join("sub/inc.conf"),
        "[s]\nB = inc\n@INLINE@ ../other.conf\n",
    );
    write(&dir.path().join("other.conf"), "[t]\nD = other\n");
    let mut ini = ini_without_env();
    ini.load_file(&main).expect("load");
    assert_eq!(raw(&ini, "s", "A").as_deref(), Some("main"));
    assert_eq!(raw(&ini, "s", "B").as_deref(), Some("inc"));
    assert_eq!(raw(&ini, "t", "D").as_deref(), Some("other"));
    // The including file's section continues after the directive.
    assert_eq!(raw(&ini, "s", "C").as_deref(), Some("after"));
    let b = ini.get_raw("s", "B").expect("set");
    assert!(b.origin.source.ends_with("inc.conf"), "{}", b.origin);
    assert_eq!(b.origin.line, 2);
}

#[test]
fn included_file_starts_outside_any_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    write(&main, "[s]\n@inline@ inc.conf\n");
    write(&dir.path().join("inc.conf"), "A = 1\n");
    let mut ini = ini_without_env();
    let error = ini.load_file(&main).expect_err("option outside section");
    assert!(
        error
            .to_string()
            .ends_with("inc.conf:1: option \"A\" appears before any [section] header"),
        "{error}"
    );
}

#[test]
fn inline_missing_file_names_including_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    write(&main, "[s]\nA = 1\n@inline@ nowhere.conf\n");
    let mut ini = ini_without_env();
    let error = ini.load_file(&main).expect_err("missing include");
    assert!(matches!(error, ConfigError::Include { .. }));
    let expected = format!(
        "{}:3: cannot read included file {}: ",
        main.display(),
        fs::canonicalize(dir.path())
            .expect("canonical")
            .join("nowhere.conf")
            .display()
    );
    assert!(error.to_string().starts_with(&expected), "{error}");
}

#[test]
fn inline_cycle_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.conf");
    write(&a, "[s]\nA = 1\n@inline@ b.conf\n");
    write(&dir.path().join("b.conf"), "[s]\nB = 1\n@inline@ a.conf\n");
    let mut ini = ini_without_env();
    let error = ini.load_file(&a).expect_err("cycle");
    let text = error.to_string();
    assert!(text.contains("b.conf:3: inclusion cycle: "), "{text}");
    assert!(text.ends_with("a.conf"), "{text}");
    assert!(!ini.has_section("s"), "store unchanged after error");
}

#[test]
fn inline_self_cycle_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.conf");
    write(&a, "@inline@ ./a.conf\n");
    let mut ini = ini_without_env();
    let error = ini.load_file(&a).expect_err("cycle");
    assert!(
        error.to_string().contains(":1: inclusion cycle: "),
        "{error}"
    );
}

#[test]
fn include_depth_is_limited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = MAX_INCLUDE_DEPTH + 5;
    for index in 0..files {
        let text = format!("[s]\nLEVEL = {index}\n@inline@ f{}.conf\n", index + 1);
        write(&dir.path().join(format!("f{index}.conf")), &text);
    }
    write(&dir.path().join(format!("f{files}.conf")), "");
    let mut ini = ini_without_env();
    let error = ini
        .load_file(dir.path().join("f0.conf"))
        .expect_err("too deep");
    assert!(
        error.to_string().contains(&format!(
            "files included more than {MAX_INCLUDE_DEPTH} levels deep"
        )),
        "{error}"
    );
}

#[test]
fn including_the_same_file_twice_is_fine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    write(
        &main,
        "@inline@ common.conf\n[s]\nA = 2\n@inline@ common.conf\n",
    );
    write(&dir.path().join("common.conf"), "[s]\nA = 1\n");
    let mut ini = ini_without_env();
    ini.load_file(&main).expect("load");
    assert_eq!(raw(&ini, "s", "A").as_deref(), Some("1"));
}

#[test]
fn parse_str_inline_needs_base_dir_for_relative_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("inc.conf"), "[s]\nA = 1\n");
    assert_eq!(
        parse_error("@inline@ inc.conf\n"),
        "/etc/talerbox.conf:1: @inline@ with relative path \"inc.conf\" needs a base \
         directory, and /etc/talerbox.conf has none"
    );

    let mut ini = ini_without_env();
    ini.parse_str("@inline@ inc.conf\n", "<text>", Some(dir.path()))
        .expect("relative to base_dir");
    assert_eq!(raw(&ini, "s", "A").as_deref(), Some("1"));

    let absolute = format!("@inline@ {}\n", dir.path().join("inc.conf").display());
    let mut ini = ini_without_env();
    ini.parse_str(&absolute, "<text>", None)
        .expect("absolute path");
    assert_eq!(raw(&ini, "s", "A").as_deref(), Some("1"));
}

#[test]
fn inline_secret_loads_only_the_named_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    write(
        &main,
        "[exchange-offline]\nMASTER_PRIV_FILE = old\n\
         @inline-secret@ Exchange-Offline secrets/offline.secret.conf\n",
    );
    write(
        &dir.path().join("secrets/offline.secret.conf"),
        "[exchange-offline]\nMASTER_PRIV_FILE = /secret/key\n[other]\nX = 1\n",
    );
    let mut ini = ini_without_env();
    ini.load_file(&main).expect("load");
    assert_eq!(
        raw(&ini, "exchange-offline", "MASTER_PRIV_FILE").as_deref(),
        Some("/secret/key")
    );
    assert!(!ini.has_section("other"));
}

#[test]
fn unreadable_inline_secret_marks_section_inaccessible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    write(
        &main,
        "[exchange-offline]\nKEEP = 1\n@inline-secret@ exchange-offline missing.secret.conf\n",
    );
    let mut ini = ini_without_env();
    ini.load_file(&main)
        .expect("an unreadable secret is not a load error");
    assert!(ini.has_section("exchange-offline"));
    assert_eq!(
        string(&ini, "exchange-offline", "KEEP").as_deref(),
        Some("1")
    );
    let error = ini
        .get_string("exchange-offline", "MASTER_PRIV_FILE")
        .expect_err("inaccessible");
    let text = error.to_string();
    assert!(
        text.starts_with("[exchange-offline] MASTER_PRIV_FILE: not set, and section [exchange-offline] comes from secret file "),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "missing.secret.conf (@inline-secret@ at {}:3), which cannot be read: ",
            main.display()
        )),
        "{text}"
    );
    assert!(
        ini.missing("exchange-offline", "X")
            .to_string()
            .contains("secret file")
    );
}

#[test]
fn inline_secret_without_base_dir_needs_absolute_path() {
    assert!(parse_error("@inline-secret@ s secret.conf\n").contains("needs a base directory"));
}

#[test]
fn directives_inside_secret_file_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    write(&main, "@inline-secret@ s secret.conf\n");
    write(
        &dir.path().join("secret.conf"),
        "[s]\n@inline@ other.conf\n",
    );
    let mut ini = ini_without_env();
    let error = ini.load_file(&main).expect_err("directive in secret");
    assert!(
        error.to_string().ends_with(
            "secret.conf:2: directives are not allowed in a file read by @inline-secret@"
        ),
        "{error}"
    );
}

#[test]
fn inline_matching_includes_matching_files_in_name_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    write(&main, "@inline-matching@ conf.d/*.conf\n");
    write(&dir.path().join("conf.d/20-b.conf"), "[s]\nA = b\nB = b\n");
    write(&dir.path().join("conf.d/10-a.conf"), "[s]\nA = a\nC = a\n");
    write(&dir.path().join("conf.d/30-c.txt"), "[s]\nA = txt\n");
    write(&dir.path().join("conf.d/.hidden.conf"), "[s]\nA = hidden\n");
    fs::create_dir_all(dir.path().join("conf.d/dir.conf")).expect("mkdir");
    let mut ini = ini_without_env();
    ini.load_file(&main).expect("load");
    assert_eq!(raw(&ini, "s", "A").as_deref(), Some("b"));
    assert_eq!(raw(&ini, "s", "C").as_deref(), Some("a"));
    let names: Vec<&str> = ini.options("s").iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["A", "C", "B"]);
}

#[test]
fn inline_matching_without_matches_is_fine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    write(
        &main,
        "@inline-matching@ conf.d/*.conf\n@inline-matching@ nodir/*.conf\n[s]\nA = 1\n",
    );
    fs::create_dir_all(dir.path().join("conf.d")).expect("mkdir");
    let mut ini = ini_without_env();
    ini.load_file(&main).expect("load");
    assert_eq!(raw(&ini, "s", "A").as_deref(), Some("1"));
}

#[test]
fn inline_matching_rejects_wildcards_in_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    write(&main, "@inline-matching@ */x.conf\n");
    let mut ini = ini_without_env();
    let error = ini.load_file(&main).expect_err("wildcard directory");
    assert!(
        error
            .to_string()
            .contains("wildcards are supported only in the last path component"),
        "{error}"
    );
}

#[test]
fn wildcard_matching() {
    assert!(wildcard_matches("*.conf", "a.conf"));
    assert!(wildcard_matches("*.conf", ".conf"));
    assert!(wildcard_matches("a?c", "abc"));
    assert!(wildcard_matches("*", ""));
    assert!(wildcard_matches("a*b*c", "aXXbYYc"));
    assert!(wildcard_matches("*ab", "aab"));
    assert!(wildcard_matches("exact", "exact"));
    assert!(!wildcard_matches("*.conf", "a.conf.bak"));
    assert!(!wildcard_matches("a?c", "ac"));
    assert!(!wildcard_matches("exact", "exactly"));
    assert!(!wildcard_matches("", "a"));
}

// ---------------------------------------------------------------- expansion

#[test]
fn expands_variables_from_paths_section() {
    let ini = parsed(
        "[paths]\n\
         TALER_HOME = /var/lib/taler\n\
         TALER_DATA_HOME = $TALER_HOME/data\n\
         [exchange]\n\
         KEYS = $TALER_DATA_HOME/keys\n\
         BRACED = ${taler_home}x\n\
         MIXED = a/${TALER_HOME}/b/$TALER_HOME-c\n",
    );
    assert_eq!(
        string(&ini, "exchange", "KEYS").as_deref(),
        Some("/var/lib/taler/data/keys")
    );
    assert_eq!(
        string(&ini, "exchange", "BRACED").as_deref(),
        Some("/var/lib/talerx")
    );
    assert_eq!(
        string(&ini, "exchange", "MIXED").as_deref(),
        Some("a//var/lib/taler/b//var/lib/taler-c")
    );
    assert_eq!(
        string(&ini, "paths", "TALER_DATA_HOME").as_deref(),
        Some("/var/lib/taler/data")
    );
    assert_eq!(
        raw(&ini, "exchange", "KEYS").as_deref(),
        Some("$TALER_DATA_HOME/keys")
    );
}

#[test]
fn expands_variables_from_injected_environment() {
    let mut ini = ini_with_env(&[("HOME", "/home/alice"), ("RUNTIME", "/run/x$y")]);
    ini.parse_str(
        "[paths]\nTALER_HOME = $HOME/.taler\n[s]\nA = $TALER_HOME\nB = ${RUNTIME}\n",
        LABEL,
        None,
    )
    .expect("parse");
    assert_eq!(
        string(&ini, "s", "A").as_deref(),
        Some("/home/alice/.taler")
    );
    // Environment values are used verbatim.
    assert_eq!(string(&ini, "s", "B").as_deref(), Some("/run/x$y"));
}

#[test]
fn paths_section_takes_precedence_over_environment() {
    let mut ini = ini_with_env(&[("HOME", "/from/env")]);
    ini.parse_str("[paths]\nHOME = /from/paths\n[s]\nA = $HOME\n", LABEL, None)
        .expect("parse");
    assert_eq!(string(&ini, "s", "A").as_deref(), Some("/from/paths"));
}

#[test]
fn environment_names_are_case_sensitive() {
    let mut ini = ini_with_env(&[("HOME", "/h")]);
    ini.parse_str("[s]\nA = ${home:-lower}\n", LABEL, None)
        .expect("parse");
    assert_eq!(string(&ini, "s", "A").as_deref(), Some("lower"));
}

#[test]
fn default_process_environment_is_used() {
    let Some((name, value)) =
        std::env::vars().find(|(name, _)| !name.is_empty() && name.chars().all(is_name_char))
    else {
        return;
    };
    let mut ini = Ini::new();
    ini.parse_str(&format!("[s]\nA = ${{{name}}}\n"), LABEL, None)
        .expect("parse");
    assert_eq!(string(&ini, "s", "A"), Some(value));
}

#[test]
fn expands_defaults() {
    let mut ini = ini_with_env(&[("SET", "env")]);
    ini.parse_str(
        "[paths]\nBASE = /base\n[s]\n\
         PLAIN = ${UNSET:-fallback}\n\
         USED = ${SET:-fallback}\n\
         NESTED = ${UNSET:-$BASE/x}\n\
         DEEP = ${UNSET:-${ALSO_UNSET:-${BASE}/y}}\n\
         EQUALS = ${UNSET:=eq}\n\
         BARE = ${UNSET:bare}\n\
         EMPTY = ${UNSET:-}\n",
        LABEL,
        None,
    )
    .expect("parse");
    assert_eq!(string(&ini, "s", "PLAIN").as_deref(), Some("fallback"));
    assert_eq!(string(&ini, "s", "USED").as_deref(), Some("env"));
    assert_eq!(string(&ini, "s", "NESTED").as_deref(), Some("/base/x"));
    assert_eq!(string(&ini, "s", "DEEP").as_deref(), Some("/base/y"));
    assert_eq!(string(&ini, "s", "EQUALS").as_deref(), Some("eq"));
    assert_eq!(string(&ini, "s", "BARE").as_deref(), Some("bare"));
    assert_eq!(string(&ini, "s", "EMPTY").as_deref(), Some(""));
}

#[test]
fn unknown_variable_is_an_error_naming_option_and_origin() {
    let ini = parsed("[exchange]\nBASE_URL = http://$HOSTNAME/\n");
    let error = ini
        .get_string("exchange", "base_url")
        .expect_err("unknown variable");
    assert_eq!(
        error.to_string(),
        "[exchange] BASE_URL at /etc/talerbox.conf:2: unknown variable $HOSTNAME: \
         set it in [PATHS] or in the environment"
    );
}

#[test]
fn variable_cycle_is_an_error() {
    let ini = parsed("[paths]\nA = $B\nB = ${A}\n[s]\nX = $A\n");
    let error = ini.get_string("s", "X").expect_err("cycle");
    assert_eq!(
        error.to_string(),
        "[s] X at /etc/talerbox.conf:5: variable cycle in [PATHS]: A -> B -> A"
    );
    let self_reference = parsed("[paths]\nA = x$A\n");
    assert!(self_reference.get_string("paths", "A").is_err());
}

#[test]
fn deeply_nested_defaults_hit_the_limit() {
    let value = format!("{}x{}", "${U:-".repeat(100), "}".repeat(100));
    let ini = parsed(&format!("[s]\nA = {value}\n"));
    let error = ini.get_string("s", "A").expect_err("too deep");
    assert!(error.to_string().contains("nested more than"), "{error}");
}

#[test]
fn dollar_without_name_is_literal() {
    let ini = parsed("[s]\nA = cost: 5$\nB = $/x\nC = a$$ b\n");
    assert_eq!(string(&ini, "s", "A").as_deref(), Some("cost: 5$"));
    assert_eq!(string(&ini, "s", "B").as_deref(), Some("$/x"));
    assert_eq!(string(&ini, "s", "C").as_deref(), Some("a$$ b"));
}

#[test]
fn malformed_references_are_errors() {
    let ini = parsed("[s]\nOPEN = ${A\nEMPTY = ${}\nBAD = ${A B}\n");
    assert_eq!(
        ini.get_string("s", "OPEN").expect_err("open").to_string(),
        "[s] OPEN at /etc/talerbox.conf:2: missing \"}\" after \"${A\""
    );
    assert_eq!(
        ini.get_string("s", "EMPTY").expect_err("empty").to_string(),
        "[s] EMPTY at /etc/talerbox.conf:3: invalid variable name \"\" in \"${}\""
    );
    assert!(ini.get_string("s", "BAD").is_err());
}

#[test]
fn typed_getters_expand_variables() {
    let mut ini = ini_with_env(&[("PORT", "8080"), ("FLAG", "yes")]);
    ini.parse_str(
        "[s]\nPORT = $PORT\nFLAG = ${FLAG}\nTIME = ${T:-1 h}\n",
        LABEL,
        None,
    )
    .expect("parse");
    assert_eq!(ini.get_number("s", "PORT").expect("number"), Some(8080));
    assert_eq!(ini.get_yes_no("s", "FLAG").expect("flag"), Some(true));
    assert_eq!(
        ini.get_relative_time("s", "TIME").expect("time"),
        Some(RelativeDuration::Micros(3_600_000_000))
    );
}

// ---------------------------------------------------------------- typed getters

#[test]
fn missing_options_are_none() {
    let ini = parsed("[s]\nA = 1\n");
    assert_eq!(ini.get_string("s", "B").expect("ok"), None);
    assert_eq!(ini.get_string("t", "A").expect("ok"), None);
    assert_eq!(ini.get_yes_no("s", "B").expect("ok"), None);
    assert_eq!(ini.get_number("s", "B").expect("ok"), None);
    assert_eq!(ini.get_relative_time("s", "B").expect("ok"), None);
    assert_eq!(ini.get_choice("s", "B", &["x"]).expect("ok"), None);
}

#[test]
fn yes_no_values() {
    let ini =
        parsed("[bank]\nA = YES\nB = yes\nC = No\nD = nO\n\n\n\n\n\n\nCURRENCY = maybe\nE = \n");
    assert_eq!(ini.get_yes_no("bank", "A").expect("yes"), Some(true));
    assert_eq!(ini.get_yes_no("bank", "B").expect("yes"), Some(true));
    assert_eq!(ini.get_yes_no("bank", "C").expect("no"), Some(false));
    assert_eq!(ini.get_yes_no("bank", "D").expect("no"), Some(false));
    assert_eq!(
        ini.get_yes_no("bank", "currency")
            .expect_err("maybe")
            .to_string(),
        "[bank] CURRENCY at /etc/talerbox.conf:12: expected YES or NO, got \"maybe\""
    );
    assert!(ini.get_yes_no("bank", "E").is_err());
}

#[test]
fn number_values() {
    let ini = parsed(
        "[s]\nA = 0\nB = 18446744073709551615\nC = 18446744073709551616\nD = -1\nE = 1.5\nF =\nG = +1\n",
    );
    assert_eq!(ini.get_number("s", "A").expect("zero"), Some(0));
    assert_eq!(ini.get_number("s", "B").expect("max"), Some(u64::MAX));
    assert_eq!(
        ini.get_number("s", "C").expect_err("overflow").to_string(),
        "[s] C at /etc/talerbox.conf:4: number 18446744073709551616 is too large \
         (maximum 18446744073709551615)"
    );
    assert_eq!(
        ini.get_number("s", "D").expect_err("negative").to_string(),
        "[s] D at /etc/talerbox.conf:5: expected a non-negative integer, got \"-1\""
    );
    assert!(ini.get_number("s", "E").is_err());
    assert!(ini.get_number("s", "F").is_err());
    assert!(ini.get_number("s", "G").is_err());
}

#[test]
fn every_time_unit() {
    let second = 1_000_000u64;
    let cases: &[(&str, u64)] = &[
        ("7 us", 7),
        ("7 ms", 7_000),
        ("7 s", 7 * second),
        ("7 second", 7 * second),
        ("7 seconds", 7 * second),
        ("7 \"", 7 * second),
        ("7 m", 7 * 60 * second),
        ("7 min", 7 * 60 * second),
        ("7 minute", 7 * 60 * second),
        ("7 minutes", 7 * 60 * second),
        ("7 '", 7 * 60 * second),
        ("7 h", 7 * 3_600 * second),
        ("7 hour", 7 * 3_600 * second),
        ("7 hours", 7 * 3_600 * second),
        ("7 d", 7 * 86_400 * second),
        ("7 day", 7 * 86_400 * second),
        ("7 days", 7 * 86_400 * second),
        ("7 week", 7 * 604_800 * second),
        ("7 weeks", 7 * 604_800 * second),
        ("7 year", 7 * 31_536_000 * second),
        ("7 years", 7 * 31_536_000 * second),
        ("7 a", 7 * 31_536_000 * second),
    ];
    for (text, micros) in cases {
        assert_eq!(
            parse_relative_time(text),
            Ok(RelativeDuration::Micros(*micros)),
            "{text}"
        );
    }
    assert_eq!(TIME_UNITS.len(), cases.len(), "every unit is tested");
}

#[test]
fn relative_time_syntax() {
    let second = 1_000_000u64;
    let ok = |text: &str| parse_relative_time(text).expect(text);
    assert_eq!(ok("forever"), RelativeDuration::Forever);
    assert_eq!(ok(" FOREVER "), RelativeDuration::Forever);
    assert_eq!(ok("30s"), RelativeDuration::Micros(30 * second));
    assert_eq!(ok("30 S"), RelativeDuration::Micros(30 * second));
    assert_eq!(ok("1 h 30 min"), RelativeDuration::Micros(5_400 * second));
    assert_eq!(ok("1h30min"), RelativeDuration::Micros(5_400 * second));
    assert_eq!(ok("2 Weeks"), RelativeDuration::Micros(1_209_600 * second));
    assert_eq!(ok("1 d"), RelativeDuration::Micros(86_400 * second));
    assert_eq!(ok("1'30\""), RelativeDuration::Micros(90 * second));
    assert_eq!(ok("0 s"), RelativeDuration::Micros(0));
}

#[test]
fn relative_time_errors() {
    let error = |text: &str| parse_relative_time(text).expect_err(text);
    assert_eq!(error("5"), "missing unit after 5");
    assert_eq!(error("1 h 30"), "missing unit after 30");
    assert_eq!(error("5 5 s"), "missing unit after 5");
    assert_eq!(error("5 fortnights"), "unknown time unit \"fortnights\"");
    assert_eq!(error("h"), "expected a number before \"h\"");
    assert_eq!(error("1 h min"), "expected a number before \"min\"");
    assert_eq!(error(""), "empty value");
    assert_eq!(error("   "), "empty value");
    assert_eq!(error("-1 s"), "expected a number before \"-\"");
    assert_eq!(error("1.5 h"), "unknown time unit \".\"");
    assert_eq!(error("584943 years"), "value is too large");
    assert!(parse_relative_time("584942 years").is_ok());
    assert_eq!(error("99999999999999999999 us"), "value is too large");
    assert_eq!(
        error("584000 years 584000 years"),
        "value is too large",
        "overflow of the sum"
    );
}

#[test]
fn relative_time_getter_reports_origin() {
    let ini = parsed("[s]\nT = 5\n");
    assert_eq!(
        ini.get_relative_time("s", "T")
            .expect_err("no unit")
            .to_string(),
        "[s] T at /etc/talerbox.conf:2: invalid relative time \"5\": missing unit after 5"
    );
}

#[test]
fn choice_values() {
    let ini = parsed("[s]\nA = Postgres\nB = oracle\n");
    let choices = ["sqlite", "postgres"];
    assert_eq!(
        ini.get_choice("s", "A", &choices).expect("choice"),
        Some("postgres".to_owned())
    );
    assert_eq!(
        ini.get_choice("s", "B", &choices)
            .expect_err("not a choice")
            .to_string(),
        "[s] B at /etc/talerbox.conf:3: expected one of \"sqlite\", \"postgres\", got \"oracle\""
    );
}

#[test]
fn invalid_and_missing_constructors() {
    let ini = parsed("[exchange]\n\nCURRENCY = EUR:1\n");
    assert_eq!(
        ini.invalid("Exchange", "currency", "not a currency")
            .to_string(),
        "[exchange] CURRENCY at /etc/talerbox.conf:3: not a currency"
    );
    assert_eq!(
        ini.invalid("exchange", "BASE_URL", "needs a value")
            .to_string(),
        "[exchange] BASE_URL: needs a value"
    );
    assert_eq!(
        ini.missing("exchange", "base_url").to_string(),
        "[exchange] BASE_URL: required option is not set"
    );
}

// ---------------------------------------------------------------- set

#[test]
fn set_creates_and_overrides() {
    let mut ini = parsed("[s]\nA = 1\n");
    ini.set("S", "a", "2", Origin::label("<command line>"))
        .expect("set");
    ini.set("New", "b", " spaced ", Origin::label("<command line>"))
        .expect("set");
    assert_eq!(raw(&ini, "s", "A").as_deref(), Some("2"));
    assert_eq!(
        ini.get_raw("s", "A").expect("set").origin,
        Origin::label("<command line>")
    );
    assert_eq!(ini.sections().collect::<Vec<_>>(), ["s", "new"]);
    assert_eq!(raw(&ini, "new", "B").as_deref(), Some(" spaced "));
}

#[test]
fn set_rejects_names_and_values_dump_cannot_write() {
    let mut ini = ini_without_env();
    let origin = Origin::label("<command line>");
    let rejected = [
        ("", "A", "v"),
        (" s", "A", "v"),
        ("a\nb", "A", "v"),
        ("s", "", "v"),
        ("s", "A=B", "v"),
        ("s", "#A", "v"),
        ("s", "%A", "v"),
        ("s", "@A", "v"),
        ("s", "[A", "v"),
        ("s", "A ", "v"),
        ("s", "A", "line\nbreak"),
    ];
    for (section, option, value) in rejected {
        assert!(
            ini.set(section, option, value, origin.clone()).is_err(),
            "{section:?} {option:?} {value:?}"
        );
    }
    assert_eq!(
        ini.set("s", "A=B", "v", origin)
            .expect_err("bad name")
            .to_string(),
        "<command line>: invalid option name \"A=B\""
    );
    assert_eq!(ini.sections().count(), 0);
}

// ---------------------------------------------------------------- dump

#[test]
fn dump_format() {
    let mut ini = parsed(
        "[Bank]\nCurrency = KUDOS\n[empty]\n[s]\nSPACED = \"  x \"\nHASH = a#b\n\
         QUOTED = \"\"q\"\"\nEMPTY =\nDOLLAR = $HOME/x\n",
    );
    ini.set("bank", "port", "8080", Origin::label("<command line>"))
        .expect("set");
    assert_eq!(
        ini.dump(),
        "[bank]\nCURRENCY = KUDOS\nPORT = 8080\n\n[empty]\n\n[s]\nSPACED = \"  x \"\n\
         HASH = \"a#b\"\nQUOTED = \"\"q\"\"\nEMPTY = \nDOLLAR = $HOME/x\n"
    );
}

#[test]
fn dump_round_trips() {
    let mut ini = parsed(
        "[paths]\nTALER_HOME = /var/lib/taler\n\
         [exchange]\nBASE_URL = http://localhost/\nDESCRIPTION = \"  leading\"\n\
         TAIL = \"trailing\t\"\nHASH = # x\nQUOTE = \"\"\"\nLONE = \"\nOPEN = \"abc\n\
         EQ = a=b\nUNICODE = Grüße €\n[empty]\n",
    );
    ini.set("cli", "x", "\"both\"", Origin::label("<command line>"))
        .expect("set");
    ini.set("cli", "y", "", Origin::label("<command line>"))
        .expect("set");
    let mut again = ini_without_env();
    again
        .parse_str(&ini.dump(), "<dump>", None)
        .expect("dump parses");
    assert_eq!(contents(&again), contents(&ini));
    assert_eq!(again.dump(), ini.dump());
}

#[test]
fn dump_of_empty_store_is_empty() {
    assert_eq!(ini_without_env().dump(), "");
}

#[test]
fn debug_output_omits_environment() {
    let text = format!("{:?}", parsed("[s]\nA = 1\n"));
    assert!(text.starts_with("Ini { sections: "), "{text}");
}

// ---------------------------------------------------------------- properties

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Lines that are often valid, to reach deep into the parser.
    fn config_line() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => "\\[[a-zA-Z0-9 _\\-\\]\\[#\"]{0,8}\\]",
            6 => "[ \t]*[a-zA-Z_#%\"\\[]{0,6}[ \t]*=[ \t]*[ -~\u{e9}\u{3000}\r\t]{0,12}",
            1 => "[ \t]*[#%].{0,10}",
            1 => "@[a-z\\-]{0,14}@ ?[a-z./ ]{0,10}",
            1 => ".{0,16}",
        ]
    }

    fn config_text() -> impl Strategy<Value = String> {
        prop::collection::vec(config_line(), 0..12)
            .prop_map(|lines| format!("[start]\n{}", lines.join("\n")))
    }

    fn assert_getters_do_not_panic(ini: &Ini) {
        for section in ini.sections() {
            for entry in ini.options(section) {
                let _ = ini.get_string(section, &entry.name);
                let _ = ini.get_yes_no(section, &entry.name);
                let _ = ini.get_number(section, &entry.name);
                let _ = ini.get_relative_time(section, &entry.name);
                let _ = ini.get_choice(section, &entry.name, &["a", "b"]);
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,300}") {
            let mut ini = ini_without_env();
            let _ = ini.parse_str(&text, "<prop>", None);
            assert_getters_do_not_panic(&ini);
        }

        #[test]
        fn config_like_text_round_trips_through_dump(text in config_text()) {
            let mut ini = ini_without_env();
            if ini.parse_str(&text, "<prop>", None).is_ok() {
                assert_getters_do_not_panic(&ini);
                let mut again = ini_without_env();
                prop_assert!(again.parse_str(&ini.dump(), "<dump>", None).is_ok());
                prop_assert_eq!(contents(&again), contents(&ini));
            }
        }

        #[test]
        fn set_values_round_trip_through_dump(
            section in ".{0,8}",
            option in ".{0,8}",
            value in ".{0,16}",
        ) {
            let mut ini = ini_without_env();
            if ini.set(&section, &option, &value, Origin::label("<prop>")).is_ok() {
                let mut again = ini_without_env();
                prop_assert!(again.parse_str(&ini.dump(), "<dump>", None).is_ok());
                prop_assert_eq!(contents(&again), contents(&ini));
            }
        }

        #[test]
        fn expansion_never_panics(
            paths in prop::collection::vec(("[A-C]", "[$A-C{}:\\-=x/ ]{0,12}"), 0..4),
            value in "[$A-C{}:\\-=x/ ]{0,24}",
        ) {
            let mut ini = ini_with_env(&[("C", "env$A")]);
            for (name, raw) in &paths {
                ini.set("paths", name, raw, Origin::label("<prop>")).expect("valid names");
            }
            ini.set("s", "V", &value, Origin::label("<prop>")).expect("valid names");
            let _ = ini.get_string("s", "V");
        }

        #[test]
        fn relative_time_parser_never_panics(text in "[0-9a-zA-Z \"'.\\-]{0,24}") {
            let _ = parse_relative_time(&text);
        }

        #[test]
        fn wildcard_matches_itself_literally(name in "[a-z.]{0,12}") {
            prop_assert!(wildcard_matches(&name, &name));
            prop_assert!(wildcard_matches("*", &name));
        }
    }

    proptest! {
        #![proptest_config(crate::domain::fuzz_tests::fuzz_config())]

        /// The INI parser's fuzz target (100,000 cases; see `domain::fuzz_tests`).
        #[test]
        #[ignore = "fuzzing: run with --ignored fuzz_"]
        fn fuzz_ini(text in config_text(), noise in ".{0,120}") {
            let mut ini = ini_without_env();
            if ini.parse_str(&text, "<fuzz>", None).is_ok() {
                assert_getters_do_not_panic(&ini);
                let mut again = ini_without_env();
                prop_assert!(again.parse_str(&ini.dump(), "<dump>", None).is_ok());
                prop_assert_eq!(contents(&again), contents(&ini));
            }
            let mut ini = ini_without_env();
            let _ = ini.parse_str(&noise, "<fuzz>", None);
            assert_getters_do_not_panic(&ini);
        }
    }
}
