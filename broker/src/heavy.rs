//! The pool of low-priority threads that decode, answer and encode heavy requests: those
//! of 10,000 elements or more (see `dispatch`), whose work is linear in their elements but
//! can still take tens of milliseconds.
//!
//! Running them off the async workers keeps them from holding up other connections'
//! requests on the same worker; running them at a lower CPU priority ([`NICE`]) keeps
//! them from taking the cores that a normal client's requests need: on a machine of two
//! cores, a heavy request at normal priority doubled a probe client's round-trip p99.
//! The pool has as many threads as the machine has cores, so heavy requests from many
//! connections queue here instead of taking every blocking thread that storage needs.
//!
//! Invariants: a job's result, or its panic, reaches its caller (the panic is resumed
//! there, as [`crate::blocking`] does); the threads end when the pool is dropped.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use tokio::sync::oneshot;

/// The nice value of the pool's threads: the scheduler weighs a thread at nice 10 about a
/// tenth of one at 0, so heavy work takes what normal requests leave.
pub const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool (one per broker).
#[derive(Debug)]
pub struct HeavyPool {
    jobs: mpsc::Sender<Job>,
}

impl HeavyPool {
    /// Starts `threads` threads (at least one) at [`NICE`].
    ///
    /// # Errors
    /// A thread that cannot be spawned.
    pub fn start(threads: usize) -> std::io::Result<HeavyPool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            thread::Builder::new().name(format!("sluice-heavy-{i}")).spawn(move || {
                if let Err(e) = crate::storage::sys::lower_thread_priority(NICE) {
                    tracing::warn!(error = %e, "heavy request thread keeps normal priority");
                }
                loop {
                    let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(job) => job,
                        // The pool was dropped.
                        Err(_) => return,
                    };
                    job();
                }
            })?;
        }
        Ok(HeavyPool { jobs: tx })
    }

    /// Runs `f` on one of the pool's threads and returns its result.
    ///
    /// # Panics
    /// Resumes `f`'s panic.
    ///
    /// # Cancel safety
    /// Dropping the future drops the result; `f` still runs to its end.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        });
        if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
            // Every thread is gone (none should be: jobs catch their panics): a blocking
            // thread does it instead.
            crate::blocking::run("heavy request", job).await;
        }
        result_of(rx).await
    }
}

/// The result a job sent: every job sends one before it ends, panic or not.
async fn result_of<T>(rx: oneshot::Receiver<thread::Result<T>>) -> T {
    match rx.await.expect("invariant: a job always sends its result") {
        Ok(v) => v,
        Err(panic) => resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_low_priority_threads_and_panics_reach_the_caller() {
        let pool = HeavyPool::start(2).unwrap();
        let name = pool.run(|| thread::current().name().map(str::to_owned)).await;
        assert!(name.unwrap().starts_with("sluice-heavy-"));
        let results = futures_join(&pool).await;
        assert_eq!(results, (1..=8).sum::<u64>());
        let panicked = tokio::spawn(async move {
            pool.run(|| panic!("job panicked")).await;
        })
        .await;
        assert!(panicked.unwrap_err().is_panic());
    }

    async fn futures_join(pool: &HeavyPool) -> u64 {
        let mut sum = 0;
        for i in 1..=8u64 {
            sum += pool.run(move || i).await;
        }
        sum
    }
}
