//! The data directory holds password hashes, PINs, tokens and keys: it is created readable by
//! its owner only (directories 0700, files 0600) whatever the umask, and looser modes found on
//! an existing installation are reported.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Creates `dir` and its missing parents with mode 0700; an existing directory is left as is.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir)
}

/// Options that create a file with mode 0600 (the umask can only remove bits from it).
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    options.mode(0o600);
    options
}

/// Creates the file `path` empty with mode 0600 unless it exists. SQLite creates its
/// databases, and their -wal and -shm files, with the mode of the database file, so creating
/// the database file this way first makes them all private.
pub fn ensure_file(path: &Path) -> io::Result<()> {
    file_options().write(true).create(true).open(path).map(drop)
}

/// Creates the new, empty file `path` with mode 0600; fails if it exists.
pub fn create_new_file(path: &Path) -> io::Result<File> {
    file_options().write(true).create_new(true).open(path)
}

/// `dir` and every directory and file under it that others than the owner may access, with
/// their modes. Symbolic links are not followed.
pub fn loose_modes(dir: &Path) -> io::Result<Vec<(PathBuf, u32)>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
        #[cfg(unix)]
        {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                found.push((path, mode));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Logs a warning for each entry of `loose_modes(dir)`; the modes are not changed, since the
/// operator may have chosen them.
pub fn warn_about_loose_modes(dir: &Path) {
    match loose_modes(dir) {
        Ok(found) => {
            for (path, mode) in found {
                tracing::warn!(
                    "{} has mode {mode:04o}: other users may read it; the data directory should be 0700 and its files 0600",
                    path.display()
                );
            }
        }
        Err(e) => tracing::warn!("checking the modes under {}: {e}", dir.display()),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn created_entries_are_private_and_loose_ones_are_found() {
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        ensure_file(&dir.join("db")).unwrap();
        create_new_file(&dir.join("message")).unwrap();
        assert_eq!(mode(&dir.join("db")), 0o600);
        assert!(create_new_file(&dir.join("message")).is_err());
        assert_eq!(loose_modes(&dir).unwrap(), vec![]);

        let set = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(&dir.join("db"), 0o644);
        set(&dir, 0o750);
        assert_eq!(
            loose_modes(&dir).unwrap(),
            vec![(dir.clone(), 0o750), (dir.join("db"), 0o644)]
        );
    }
}
