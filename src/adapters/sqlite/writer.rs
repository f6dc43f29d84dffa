//! The single writer: one connection fed by a queue, with group commit.
//!
//! Every write job runs inside its own `SAVEPOINT`; the jobs found waiting in the queue
//! together share one `BEGIN IMMEDIATE … COMMIT`, so one fsync makes many writes durable.
//! A job that fails (or panics) is rolled back to its savepoint alone, and no job is answered
//! before the commit that contains it has returned.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use rusqlite::Connection;

use super::DbError;

/// Upper bound of jobs committed together; keeps the latency of one batch bounded.
const MAX_BATCH: usize = 1024;

/// A queued write job with its result slot, type-erased for the queue.
trait Job: Send {
    /// Runs the job; returns whether its changes are to be kept.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the submitter once the outcome of the commit is known.
    fn finish(self: Box<Self>, commit: Result<(), DbError>);
}

struct TypedJob<T, E, F> {
    work: Option<F>,
    result: Option<Result<T, E>>,
    reply: SyncSender<Result<T, E>>,
}

impl<T, E, F> Job for TypedJob<T, E, F>
where
    T: Send,
    E: From<DbError> + Send,
    F: FnOnce(&Connection) -> Result<T, E> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(E::from(DbError::JobPanicked)));
        let keep = result.is_ok();
        self.result = Some(result);
        keep
    }

    fn finish(self: Box<Self>, commit: Result<(), DbError>) {
        let answer = match (self.result, commit) {
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Err(own)), _) => Err(own),
            (_, Err(commit_error)) => Err(E::from(commit_error)),
            (None, Ok(())) => Err(E::from(DbError::JobNotRun)),
        };
        // The submitter may have gone away; its result is then nobody's business.
        let _ = self.reply.send(answer);
    }
}

/// What the writer shows of itself: jobs waiting, sizes of the batches it committed, and
/// since when it has been working on its current batch (for the readiness probe).
#[derive(Clone)]
pub struct WriterStats {
    /// Jobs submitted and not yet taken into a batch.
    pub queued: Gauge,
    /// Jobs per group commit.
    pub batch_sizes: Histogram,
    /// Microseconds after `epoch` at which the current batch began; 0 while idle.
    busy_since: Arc<AtomicU64>,
    epoch: Instant,
}

impl WriterStats {
    fn new() -> Self {
        WriterStats {
            queued: Gauge::default(),
            batch_sizes: Histogram::new(exponential_buckets(1.0, 4.0, 6)),
            busy_since: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
        }
    }

    fn begin_batch(&self) {
        let micros = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.busy_since.store(micros.max(1), Ordering::Relaxed);
    }

    fn end_batch(&self) {
        self.busy_since.store(0, Ordering::Relaxed);
    }

    /// Whether the writer has been inside one batch for longer than `limit`: a job hangs,
    /// or the database stays locked, and every write waits behind it.
    pub fn stalled(&self, limit: Duration) -> bool {
        let since = self.busy_since.load(Ordering::Relaxed);
        since != 0
            && self
                .epoch
                .elapsed()
                .saturating_sub(Duration::from_micros(since))
                > limit
    }
}

/// Handle to the writer thread. Dropping it drains the queue and stops the thread.
pub struct Writer {
    queue: Option<Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    stats: WriterStats,
}

impl Writer {
    /// Starts the writer thread on a connection already configured for writing.
    pub fn start(conn: Connection) -> Result<Writer, DbError> {
        let (queue, jobs) = channel::<Box<dyn Job>>();
        let stats = WriterStats::new();
        let observed = stats.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(&conn, &jobs, &observed))
            .map_err(|e| DbError::Io(e.to_string()))?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
            stats,
        })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Runs `work` in its own savepoint inside the next group commit and waits until that
    /// commit is durable. An `Err` from `work` rolls back its changes only.
    pub fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = sync_channel(1);
        let job = Box::new(TypedJob {
            work: Some(work),
            result: None,
            reply,
        });
        let queue = self.queue.as_ref().ok_or(DbError::WriterStopped)?;
        self.stats.queued.inc();
        if queue.send(job).is_err() {
            self.stats.queued.dec();
            return Err(DbError::WriterStopped.into());
        }
        answer.recv().map_err(|_| DbError::WriterStopped)?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_writer(conn: &Connection, jobs: &Receiver<Box<dyn Job>>, stats: &WriterStats) {
    while let Ok(first) = jobs.recv() {
        stats.begin_batch();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        stats
            .queued
            .dec_by(i64::try_from(batch.len()).unwrap_or(i64::MAX));
        #[allow(clippy::cast_precision_loss)] // at most MAX_BATCH
        stats.batch_sizes.observe(batch.len() as f64);
        commit_batch(conn, batch);
        stats.end_batch();
    }
}

fn commit_batch(conn: &Connection, mut batch: Vec<Box<dyn Job>>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let error = DbError::from(e);
        for job in batch {
            job.finish(Err(error.clone()));
        }
        return;
    }
    for job in &mut batch {
        run_in_savepoint(conn, job.as_mut());
    }
    let commit = conn.execute_batch("COMMIT").map_err(DbError::from);
    if commit.is_err() {
        // A failed COMMIT may leave the transaction open; nothing of it may survive.
        let _ = conn.execute_batch("ROLLBACK");
        tracing::error!(
            jobs = batch.len(),
            "group commit failed; the batch was rolled back"
        );
    }
    for job in batch {
        job.finish(commit.clone());
    }
}

fn run_in_savepoint(conn: &Connection, job: &mut dyn Job) {
    if conn.execute_batch("SAVEPOINT job").is_err() {
        // Without a savepoint the job cannot be isolated; it is answered as not run.
        return;
    }
    let keep = job.run(conn);
    let end = if keep {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    if let Err(e) = conn.execute_batch(end) {
        tracing::error!(error = %e, "could not close a job's savepoint");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_batch_that_does_not_end_shows_as_stalled() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Arc::new(writer_on(&dir.path().join("db")));
        let stats = writer.stats().clone();
        assert!(!stats.stalled(Duration::ZERO));
        let (started, release) = (sync_channel::<()>(0), sync_channel::<()>(0));
        let (started_tx, started_rx) = started;
        let (release_tx, release_rx) = release;
        let busy = Arc::clone(&writer);
        let job = std::thread::spawn(move || {
            busy.write(move |_| {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok::<_, DbError>(())
            })
        });
        started_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(stats.stalled(Duration::from_millis(20)));
        assert!(!stats.stalled(Duration::from_secs(60)));
        release_tx.send(()).unwrap();
        job.join().unwrap().unwrap();
        // The job is answered just before the writer marks its batch done.
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats.stalled(Duration::ZERO) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!stats.stalled(Duration::ZERO));
        assert_eq!(stats.queued.get(), 0);
    }

    fn writer_on(path: &std::path::Path) -> Writer {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE NOT NULL);",
        )
        .unwrap();
        Writer::start(conn).unwrap()
    }

    fn count(path: &std::path::Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_failing_job_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sqlite3");
        let writer = Arc::new(writer_on(&path));
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let writer = Arc::clone(&writer);
                std::thread::spawn(move || {
                    writer.write(move |c| {
                        c.execute("INSERT INTO t (v) VALUES (?1)", [format!("row{i}")])?;
                        if i % 2 == 0 {
                            // Violates the UNIQUE constraint after a successful insert.
                            c.execute("INSERT INTO t (v) VALUES (?1)", [format!("row{i}")])?;
                        }
                        Ok::<_, DbError>(i)
                    })
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for (i, result) in results.iter().enumerate() {
            assert_eq!(result.is_ok(), i % 2 == 1, "job {i}: {result:?}");
        }
        assert_eq!(count(&path), 16);
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_writer_keeps_serving() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sqlite3");
        let writer = writer_on(&path);
        let outcome: Result<(), DbError> = writer.write(|c| {
            c.execute("INSERT INTO t (v) VALUES ('lost')", [])?;
            #[allow(clippy::panic)]
            {
                panic!("bug in a job");
            }
        });
        assert!(matches!(outcome, Err(DbError::JobPanicked)));
        writer
            .write(|c| {
                c.execute("INSERT INTO t (v) VALUES ('kept')", [])
                    .map_err(DbError::from)
            })
            .unwrap();
        assert_eq!(count(&path), 1);
    }

    #[test]
    fn answers_only_after_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sqlite3");
        let writer = writer_on(&path);
        writer
            .write(|c| {
                c.execute("INSERT INTO t (v) VALUES ('x')", [])
                    .map_err(DbError::from)
            })
            .unwrap();
        // Another connection sees the row as soon as the call has returned.
        assert_eq!(count(&path), 1);
    }
}
