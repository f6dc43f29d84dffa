//! One server per data directory: an exclusive lock on a file in it, which also tells admin
//! commands who runs there (PID) and where the exchange is reached.

use std::io::{Seek as _, Write as _};
use std::path::Path;

use anyhow::Context as _;

/// File in the data directory that a running server holds locked. Its first line is the
/// server's PID; once the server listens, the second is the exchange's public base URL.
pub const LOCK_FILE: &str = "talerbox.lock";

/// The exclusive lock of a data directory, held while a server runs on it; released when
/// dropped or when the process ends, however it ends.
#[derive(Debug)]
pub struct DataDirLock {
    file: std::fs::File,
}

impl DataDirLock {
    /// Records where the running server's exchange is reached, for `kyc trigger`.
    pub fn record_exchange_url(&mut self, url: &str) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        writeln!(self.file, "{}\n{url}", std::process::id())?;
        self.file.sync_all()
    }
}

/// A server that holds the lock of a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningServer {
    pub pid: Option<u32>,
    pub exchange_url: Option<String>,
}

/// Locks `data_dir` (created if missing) for one server and writes this process's PID into
/// the lock file; a second server gets an error naming the first one's PID.
pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<DataDirLock> {
    crate::adapters::private_files::create_dir(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let path = data_dir.join(LOCK_FILE);
    let mut file = open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = read(data_dir)
                .pid
                .map(|pid| format!(" (PID {pid})"))
                .unwrap_or_default();
            anyhow::bail!(
                "another talerbox server{holder} is running on the data directory {}",
                data_dir.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(DataDirLock { file })
}

/// The server running on `data_dir`, if one holds its lock.
pub fn running_server(data_dir: &Path) -> Option<RunningServer> {
    let path = data_dir.join(LOCK_FILE);
    if !path.exists() {
        return None;
    }
    let file = open(&path).ok()?;
    match file.try_lock() {
        // Nobody holds it: no server (our lock ends with `file`).
        Ok(()) => None,
        Err(std::fs::TryLockError::WouldBlock) => Some(read(data_dir)),
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

fn open(path: &Path) -> anyhow::Result<std::fs::File> {
    crate::adapters::private_files::file_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

fn read(data_dir: &Path) -> RunningServer {
    let text = std::fs::read_to_string(data_dir.join(LOCK_FILE)).unwrap_or_default();
    let mut lines = text.lines().map(str::trim);
    RunningServer {
        pid: lines.next().and_then(|pid| pid.parse().ok()),
        exchange_url: lines
            .next()
            .filter(|url| !url.is_empty())
            .map(str::to_owned),
    }
}
