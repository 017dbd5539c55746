//! The broker's one adapter to tokio's blocking threads: [`run`] hands a closure to a
//! blocking thread and gives its value back to the task that awaits it. Every blocking
//! call of the broker goes through here; the heavy-request pool ([`crate::heavy`]) has
//! threads of its own and comes here only if they are gone.
//!
//! A module of its own rather than a part of `partition`: the server, the dispatch, both
//! coordinators, the console and the binary use it as much as partitions do, and a leaf
//! that imports nothing of the broker can be used from any module without a cycle.
//!
//! # A failed blocking task
//!
//! One policy: the awaiting task fails as it would have had the closure run inline.
//!
//! - A panic in the closure is resumed on the awaiting task, with its own payload.
//! - A cancellation panics, naming the task. Tokio cancels a blocking task only when its
//!   runtime shuts down before the task has started (nothing here aborts one). The runtime
//!   drops its own tasks then, without polling them, so the only futures that can see a
//!   cancellation are those driven from outside it (a heavy-pool thread in
//!   `Handle::block_on`). There is no value to return for one, and waiting forever would
//!   hold that thread; a panic is also what tokio does to such a future when it touches a
//!   timer or a socket of a runtime that is shutting down.
//!
//! The one other shape is [`Blocking::or_log`], for callers that have a defined way to
//! carry on without the value: a periodic pass that runs again on the next tick, a retry
//! loop, a coordinator start that logs and leaves its coordinator unavailable, a health
//! check that reports the failure. It logs the failure, naming the task, and returns
//! `None`.
//!
//! In a release build (`panic = "abort"`) a panic aborts the process on the blocking
//! thread and reaches neither shape, so the panic half of the policy governs debug builds
//! and tests. It keeps them close to release by swallowing a panic only where a caller
//! asked for [`Blocking::or_log`].
//!
//! Invariants: the closure starts at the call, not at the first poll (as with
//! `spawn_blocking`), and dropping the future detaches it: it runs to its end all the same.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::task::{JoinError, JoinHandle};

/// Runs `f` on a blocking thread; the returned future resolves to its value. `what` names
/// the work (lowercase, a few words) in the panic or the log line of a failed task.
///
/// # Panics
/// The future resumes `f`'s panic, and panics if the runtime cancelled the task (it is
/// shutting down); see the [module documentation](self).
///
/// # Cancel safety
/// Dropping the future drops the value; `f` still runs to its end.
pub fn run<T, F>(what: &'static str, f: F) -> Blocking<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Blocking { what, task: tokio::task::spawn_blocking(f) }
}

/// The work [`run`] started: a future of its value, which drivers can keep across the
/// iterations of a `select!` loop and poll by `&mut` (it is `Unpin`).
#[derive(Debug)]
#[must_use = "the work runs all the same; await it for its value or its panic"]
pub struct Blocking<T> {
    what: &'static str,
    task: JoinHandle<T>,
}

impl<T> Blocking<T> {
    /// The value, or `None` if the task failed (a panic, or a cancellation at runtime
    /// shutdown), which is logged at error level with the task's name.
    pub fn or_log(self) -> OrLog<T> {
        OrLog(self)
    }
}

impl<T> Future for Blocking<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match ready!(Pin::new(&mut self.task).poll(cx)) {
            Ok(value) => Poll::Ready(value),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {
                panic!("blocking task `{}` was cancelled: the runtime is shutting down", self.what)
            }
        }
    }
}

/// The future of [`Blocking::or_log`].
#[derive(Debug)]
#[must_use = "the work runs all the same; await it for its value"]
pub struct OrLog<T>(Blocking<T>);

impl<T> Future for OrLog<T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let what = self.0.what;
        Poll::Ready(match ready!(Pin::new(&mut self.0.task).poll(cx)) {
            Ok(value) => Some(value),
            Err(e) => {
                log_failure(what, &e);
                None
            }
        })
    }
}

fn log_failure(what: &'static str, e: &JoinError) {
    if e.is_panic() {
        tracing::error!(task = what, error = %e, "blocking task panicked");
    } else {
        tracing::warn!(task = what, "blocking task cancelled: the runtime is shutting down");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_closures_value_comes_back_from_a_blocking_thread() {
        let caller = std::thread::current().id();
        let (ran_on, value) = run("test", move || (std::thread::current().id(), 6 * 7)).await;
        assert_eq!(value, 42);
        assert_ne!(ran_on, caller, "the closure ran on the awaiting thread");
        assert_eq!(run("test", || "kept").or_log().await, Some("kept"));
    }

    #[tokio::test]
    #[should_panic(expected = "the closure's own message")]
    async fn a_panic_in_the_closure_is_resumed_on_the_awaiting_task() {
        run("test", || panic!("the closure's own message")).await
    }

    #[tokio::test]
    async fn the_resumed_panic_keeps_its_payload() {
        let awaiting = tokio::spawn(async { run("test", || std::panic::panic_any(17u32)).await });
        let payload = awaiting.await.unwrap_err().into_panic();
        assert_eq!(payload.downcast_ref::<u32>(), Some(&17));
    }

    #[tokio::test]
    async fn or_log_turns_a_panic_into_none_and_the_caller_goes_on() {
        let failed: Option<()> = run("test", || panic!("logged, not resumed")).or_log().await;
        assert_eq!(failed, None);
    }

    #[test]
    fn a_task_cancelled_by_a_runtime_shutting_down_panics_with_its_name_or_logs() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        // Started inside the runtime, awaited from outside after it has shut down: the
        // blocking pool refuses, and so cancels, work spawned once it is shutting down.
        let handle = runtime.handle().clone();
        runtime.shutdown_background();
        let _guard = handle.enter();
        let cancelled = run("the named work", || ());
        let or_log = run("the named work", || ()).or_log();
        let outside = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(outside.block_on(or_log), None);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            outside.block_on(cancelled);
        }))
        .unwrap_err();
        let message = panicked.downcast_ref::<String>().expect("a formatted message");
        assert!(message.contains("`the named work` was cancelled"), "{message}");
    }
}
