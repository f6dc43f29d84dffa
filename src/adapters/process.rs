//! Child processes shared by the helpers talerbox runs (delivery commands, AML programs):
//! starting them despite a briefly busy executable, and waiting with a time limit.

use std::io::Read;
use std::process::{Child, Command, ExitStatus};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Starts `command`. A helper file that is still open for writing somewhere (just
/// installed, or written while another thread forks) fails with "text file busy" for a
/// moment: that is retried briefly instead of failing.
pub fn spawn(command: &mut Command) -> std::io::Result<Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Waits for the child's exit, polling with a growing pause; `None` when it was still
/// running at `timeout` (it is then killed and reaped).
pub fn wait_with_timeout(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if started.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Reads at most `limit` bytes of a pipe on a thread of its own, so that a chatty child
/// cannot block on a full pipe while it is waited for. The thread also reports whether
/// the pipe held more than `limit` bytes (the rest is read and dropped).
pub fn read_on_the_side(
    mut pipe: impl Read + Send + 'static,
    limit: usize,
) -> JoinHandle<(Vec<u8>, bool)> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        let _ = pipe.by_ref().take(cap).read_to_end(&mut bytes);
        let over = bytes.len() > limit;
        if over {
            // Drained, not kept: the child must not block on a full pipe.
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        }
        bytes.truncate(limit);
        (bytes, over)
    })
}

/// The reader's result, waiting at most `grace` once the child exited: a grandchild may
/// keep the pipe open, and must not hold the caller.
pub fn collect(reader: JoinHandle<(Vec<u8>, bool)>, grace: Duration) -> Option<(Vec<u8>, bool)> {
    let deadline = Instant::now() + grace;
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    if reader.is_finished() {
        reader.join().ok()
    } else {
        None
    }
}
