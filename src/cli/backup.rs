//! `db backup DIR` and `restore DIR`: a consistent copy of an installation (the database and
//! every key file of the data directory, with their modes) and a manifest that a restore
//! verifies before it writes anything.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use talerbox::adapters::sqlite;
use talerbox::adapters::system::SystemClock;
use talerbox::app::{self, DATABASE_FILE, LOCK_FILE};
use talerbox::ports::clock::Clock as _;

/// File name of the manifest inside a backup directory.
pub const MANIFEST: &str = "manifest.json";
/// The manifest's format version.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    /// Seconds since the Unix epoch when the backup was taken.
    time: u64,
    /// The schema version of the copied database.
    schema_version: usize,
    files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileEntry {
    name: String,
    size: u64,
    /// Hex SHA-256 of the content.
    sha256: String,
    /// Unix permission bits, restored as they were.
    mode: u32,
}

/// Writes a backup of the installation in `data_dir` into `target` (new or empty); safe while
/// the server runs: the database is copied from a read-only connection in one transaction.
pub fn backup(data_dir: &Path, target: &Path) -> anyhow::Result<()> {
    let occupied = target
        .read_dir()
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if occupied || target.is_file() {
        anyhow::bail!("{} already exists and is not empty", target.display());
    }
    std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    set_mode(target, 0o700)?;
    let database = target.join(DATABASE_FILE);
    sqlite::backup(&data_dir.join(DATABASE_FILE), &database)
        .with_context(|| format!("copying the database into {}", target.display()))?;
    set_mode(&database, 0o600)?;
    let mut files = vec![entry(&database)?];
    for key in key_files(data_dir)? {
        let name = file_name(&key)?;
        let mode = mode_of(&key)?;
        let content = std::fs::read(&key).with_context(|| format!("reading {}", key.display()))?;
        let copy = target.join(&name);
        write_new(&copy, &content, mode)?;
        files.push(entry(&copy)?);
    }
    let manifest = Manifest {
        version: VERSION,
        time: SystemClock.now().as_seconds().unwrap_or_default(),
        schema_version: schema_version(&database)?,
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    write_new(&target.join(MANIFEST), &json, 0o600)
}

/// Brings the backup in `source` back as the installation in `data_dir`, which must hold
/// none. Every file is verified against the manifest before anything is written; the database
/// appears last and at once, so an interrupted restore leaves no installation behind.
pub fn restore(source: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let manifest_path = source.join(MANIFEST);
    let text = std::fs::read(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not a talerbox backup manifest",
            manifest_path.display()
        )
    })?;
    if manifest.version != VERSION {
        anyhow::bail!("unknown backup manifest version {}", manifest.version);
    }
    if manifest.schema_version > sqlite::latest_version() {
        anyhow::bail!(
            "the backup's schema version {} is newer than this binary ({})",
            manifest.schema_version,
            sqlite::latest_version()
        );
    }
    if !manifest.files.iter().any(|f| f.name == DATABASE_FILE) {
        anyhow::bail!("the backup holds no {DATABASE_FILE}");
    }
    let mut contents = Vec::new();
    for file in &manifest.files {
        let plain = Path::new(&file.name).file_name().and_then(|n| n.to_str());
        if plain != Some(file.name.as_str()) || file.name == LOCK_FILE {
            anyhow::bail!("the manifest names an unexpected file {:?}", file.name);
        }
        let path = source.join(&file.name);
        let content =
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if content.len() as u64 != file.size || hex_sha256(&content) != file.sha256 {
            anyhow::bail!(
                "{} does not match the manifest (size or SHA-256)",
                path.display()
            );
        }
        contents.push((file, content));
    }
    // Held to the end: no server starts on a half-restored directory.
    let _lock = app::lock_data_dir(data_dir)?;
    for (file, _) in &contents {
        if data_dir.join(&file.name).exists() {
            anyhow::bail!(
                "the data directory {} already holds {}: restore into a new data directory",
                data_dir.display(),
                file.name
            );
        }
    }
    for (file, content) in contents.iter().filter(|(f, _)| f.name != DATABASE_FILE) {
        write_new(&data_dir.join(&file.name), content, file.mode)?;
    }
    let (file, content) = contents
        .iter()
        .find(|(f, _)| f.name == DATABASE_FILE)
        .ok_or_else(|| anyhow::anyhow!("the backup holds no {DATABASE_FILE}"))?;
    let partial = data_dir.join(format!("{DATABASE_FILE}.restoring"));
    let _ = std::fs::remove_file(&partial);
    write_new(&partial, content, file.mode)?;
    let database = data_dir.join(DATABASE_FILE);
    std::fs::rename(&partial, &database)
        .with_context(|| format!("moving the database into {}", data_dir.display()))?;
    let problems = sqlite::check(&database)?;
    if !problems.is_empty() {
        anyhow::bail!(
            "the restored database fails its check: {}",
            problems.join("; ")
        );
    }
    Ok(())
}

/// The schema version of a database file (SQLite's `user_version`).
fn schema_version(database: &Path) -> anyhow::Result<usize> {
    let conn = rusqlite::Connection::open_with_flags(
        database,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    Ok(usize::try_from(version).unwrap_or_default())
}

/// The key files of a data directory: every regular file except the database, its journals
/// and the lock file.
fn key_files(data_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let skip = |name: &str| name.starts_with(DATABASE_FILE) || name == LOCK_FILE;
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(data_dir)
        .with_context(|| format!("reading the data directory {}", data_dir.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_file() && !name.to_str().is_some_and(skip) {
            keys.push(entry.path());
        }
    }
    keys.sort();
    Ok(keys)
}

fn entry(path: &Path) -> anyhow::Result<FileEntry> {
    let content = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(FileEntry {
        name: file_name(path)?,
        size: content.len() as u64,
        sha256: hex_sha256(&content),
        mode: mode_of(path)?,
    })
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{} has no UTF-8 file name", path.display()))
}

fn hex_sha256(content: &[u8]) -> String {
    Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates `path` (which must not exist) with `mode`, writes `content` and syncs it.
fn write_new(path: &Path, content: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    // The umask may have narrowed the mode at creation.
    set_mode(path, mode)
}

#[cfg(unix)]
fn mode_of(path: &Path) -> anyhow::Result<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn mode_of(_: &Path) -> anyhow::Result<u32> {
    Ok(0o600)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> anyhow::Result<()> {
    Ok(())
}
