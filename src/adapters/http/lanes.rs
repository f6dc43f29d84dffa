//! Where synchronous domain calls run, off the async workers.
//!
//! Calls that may hash a password or wait for a commit go to tokio's blocking pool, which
//! grows as needed. Quick calls (a few SQLite reads) go to the quick lane: one thread per
//! core fed by a queue. Under load its threads find the next call waiting instead of being
//! woken for each one, which halves the context switches of an authenticated read.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The lane could not run the call (its threads are gone, or the call panicked).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the quick lane could not run the call")]
pub struct LaneError;

pub struct QuickLane {
    queue: Mutex<Sender<Job>>,
}

impl QuickLane {
    /// Starts `threads` worker threads (at least one).
    pub fn start(threads: usize) -> std::io::Result<Arc<QuickLane>> {
        let (queue, jobs) = channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for index in 0..threads.max(1) {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("quick-lane-{index}"))
                .spawn(move || run_jobs(&jobs))?;
        }
        Ok(Arc::new(QuickLane {
            queue: Mutex::new(queue),
        }))
    }

    /// Runs `work` on the lane and waits for its result without blocking the caller's thread.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, LaneError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(work));
            let _ = reply.send(result);
        });
        self.queue
            .lock()
            .map_err(|_| LaneError)?
            .send(job)
            .map_err(|_| LaneError)?;
        answer.await.map_err(|_| LaneError)?.map_err(|_| LaneError)
    }
}

fn run_jobs(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let next = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_calls_and_survives_panics() {
        let lane = QuickLane::start(2).unwrap();
        assert_eq!(lane.run(|| 6 * 7).await.unwrap(), 42);
        #[allow(clippy::panic)]
        let failed = lane.run(|| panic!("bug")).await;
        assert!(failed.is_err());
        let results = futures_util::future::join_all((0..100).map(|i| lane.run(move || i))).await;
        assert_eq!(results.into_iter().map(Result::unwrap).sum::<i32>(), 4950);
    }
}
