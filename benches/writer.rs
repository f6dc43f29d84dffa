//! Write throughput through the single SQLite writer at `synchronous=FULL`.
//!
//! Each write is one small INSERT submitted as its own job, as a port call would be. With one
//! submitter every write pays its own commit (fsync); with 64 concurrent submitters the writer
//! commits the jobs that queued up together (group commit).
//!
//! Run: `cargo bench --bench writer`. Prints the median of several runs per submitter count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use talerbox::adapters::sqlite::{Database, DbError, DbOptions};

const RUNS: usize = 5;
const RUN_TIME: Duration = Duration::from_secs(2);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Arc::new(Database::open(
        &dir.path().join("bench.sqlite3"),
        &DbOptions::default(),
    )?);
    db.write(|c| {
        c.execute_batch("CREATE TABLE bench (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
            .map_err(DbError::from)
    })?;
    println!("writer benchmark: synchronous=FULL, WAL, {RUNS} runs of {RUN_TIME:?} each");
    for submitters in [1, 64] {
        let mut rates: Vec<f64> = (0..RUNS)
            .map(|_| run(&db, submitters))
            .collect::<Result<_, _>>()?;
        rates.sort_by(f64::total_cmp);
        let median = rates[RUNS / 2];
        let all: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "{submitters:>2} submitter(s): median {median:.0} writes/s (runs: {})",
            all.join(", ")
        );
    }
    Ok(())
}

/// Runs `submitters` threads writing for `RUN_TIME`; returns committed writes per second.
fn run(db: &Arc<Database>, submitters: usize) -> Result<f64, DbError> {
    let started = Instant::now();
    let threads: Vec<_> = (0..submitters)
        .map(|_| {
            let db = Arc::clone(db);
            std::thread::spawn(move || -> Result<u64, DbError> {
                let mut writes = 0;
                while started.elapsed() < RUN_TIME {
                    db.write(|c| {
                        c.execute("INSERT INTO bench (payload) VALUES (randomblob(64))", [])
                            .map_err(DbError::from)
                    })?;
                    writes += 1;
                }
                Ok(writes)
            })
        })
        .collect();
    let mut total = 0;
    for thread in threads {
        total += thread.join().map_err(|_| DbError::JobPanicked)??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
