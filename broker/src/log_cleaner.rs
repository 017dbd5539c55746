//! The log cleaner's threads: `log.cleaner.threads` threads, apart from the async runtime
//! and its blocking pool, that each in turn pick the dirtiest compacted log a rule says to
//! clean (Kafka's `grabFilthiestCompactedLog`: the largest dirty ratio among the logs
//! past `min.cleanable.dirty.ratio`, past `max.compaction.lag.ms`, or holding tombstones
//! past their horizon), run a pass on it ([`PartitionLog::clean`]), and sleep
//! `log.cleaner.backoff.ms` when none is due.
//!
//! The threads share one throttle of `log.cleaner.io.max.bytes.per.second` (bytes read
//! and written) and split `log.cleaner.dedupe.buffer.size` and `log.cleaner.io.buffer.size`
//! between them, as Kafka does. A log whose pass fails is left alone until the broker
//! restarts (Kafka marks it uncleanable), so a corrupt segment does not spin a thread.
//! The threads run at a lower CPU priority ([`NICE`]): cleaning takes the CPU that
//! produce and fetch leave.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::storage::{now_ms, CleanerConfig, CleanerResources, PartitionLog};

/// The nice value of the cleaner's threads, as the heavy-request pool's. Kafka's cleaner
/// competes with the request threads at equal priority; on two cores that halved the
/// appends and reads of a partition while it was cleaned (the `compaction/while_cleaning`
/// benchmark: 0.50x and 0.53x of the figures without cleaning, 1.05x and 0.93x at nice
/// 10). A cleaner alone still has a whole core.
pub const NICE: i32 = crate::heavy::NICE;

/// Lowers the calling thread to [`NICE`], as every cleaner thread does first (and a
/// benchmark's own cleaner thread, to measure what the broker does).
pub fn lower_priority() {
    if let Err(e) = crate::storage::sys::lower_thread_priority(NICE) {
        tracing::warn!(error = %e, "log cleaner thread keeps normal priority");
    }
}

/// The logs the cleaner looks at: (topic, partition, log), called once per round.
pub type LogSource = Arc<dyn Fn() -> Vec<(String, i32, Arc<PartitionLog>)> + Send + Sync>;

/// The running cleaner threads.
#[derive(Debug)]
pub struct LogCleaner {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    stopped: AtomicBool,
    sleep: Mutex<()>,
    wake: Condvar,
    throttle: Throttle,
    uncleanable: Mutex<HashSet<PathBuf>>,
}

impl LogCleaner {
    /// Starts the threads (none when `log.cleaner.enable` is false or the count is 0).
    ///
    /// # Errors
    /// A thread that cannot be spawned.
    pub fn start(config: &CleanerConfig, source: LogSource) -> std::io::Result<LogCleaner> {
        let shared = Arc::new(Shared {
            stopped: AtomicBool::new(false),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            throttle: Throttle::new(config.io_max_bytes_per_second),
            uncleanable: Mutex::new(HashSet::new()),
        });
        let threads = if config.enable { config.threads } else { 0 };
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let (shared, source, config) =
                (Arc::clone(&shared), Arc::clone(&source), config.clone());
            let handle = std::thread::Builder::new()
                .name(format!("log-cleaner-{i}"))
                .spawn(move || run(&shared, &source, &config, threads))?;
            handles.push(handle);
        }
        Ok(LogCleaner { shared, threads: handles })
    }

    /// Stops the threads: a pass in progress ends at its next segment (what it swapped
    /// stays swapped). Blocks until they have ended.
    pub fn shutdown(self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared, source: &LogSource, config: &CleanerConfig, threads: usize) {
    lower_priority();
    let threads = threads.max(1) as u64;
    let throttle = |bytes: u64| shared.throttle.take(bytes);
    let res = CleanerResources {
        map_bytes: config.dedupe_buffer_size / threads,
        load_factor: config.io_buffer_load_factor,
        io_buffer_bytes: (config.io_buffer_size as u64 / threads) as usize,
        throttle: &throttle,
        stop: &shared.stopped,
    };
    while !shared.stopped.load(Ordering::Acquire) {
        if !clean_filthiest(shared, source, &res) {
            let guard = shared.sleep.lock().unwrap_or_else(PoisonError::into_inner);
            if shared.stopped.load(Ordering::Acquire) {
                return;
            }
            let _ = shared.wake.wait_timeout(guard, Duration::from_millis(config.backoff_ms));
        }
    }
}

/// Cleans the dirtiest log that is due; false when none is.
fn clean_filthiest(shared: &Shared, source: &LogSource, res: &CleanerResources<'_>) -> bool {
    let now = now_ms();
    let uncleanable = shared.uncleanable.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let filthiest = source()
        .into_iter()
        .filter(|(_, _, log)| !log.is_cleaning() && !uncleanable.contains(log.dir()))
        .filter_map(|(t, p, log)| {
            let c = log.cleanable(now)?;
            c.should_clean().then_some((c.dirty_ratio(), t, p, log))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let Some((ratio, topic, partition, log)) = filthiest else { return false };
    let started = Instant::now();
    match log.clean(res, now) {
        Ok(Some(stats)) => {
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(
                topic = %topic,
                partition,
                dirty_ratio = format!("{ratio:.3}"),
                segments_cleaned = stats.segments_cleaned,
                segments_merged = stats.segments_merged,
                segments_removed = stats.segments_removed,
                bytes_read = stats.bytes_read,
                bytes_written = stats.bytes_written,
                records_read = stats.records_read,
                records_kept = stats.records_kept,
                mb_per_s = format!("{:.1}", stats.bytes_read as f64 / 1e6 / secs.max(1e-9)),
                "cleaned log"
            );
            true
        }
        Ok(None) => false,
        Err(e) if shared.stopped.load(Ordering::Acquire) => {
            tracing::debug!(topic = %topic, partition, error = %e, "cleaning stopped by shutdown");
            false
        }
        Err(e) => {
            tracing::warn!(topic = %topic, partition, error = %e, "cleaning failed: the log is not cleaned again until restart");
            shared
                .uncleanable
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(log.dir().to_owned());
            false
        }
    }
}

/// A rate limit shared by the threads: each count of bytes taken waits until the bytes
/// taken since the window opened are within the rate (Kafka's `Throttler`).
#[derive(Debug)]
pub struct Throttle {
    bytes_per_second: f64,
    window: Mutex<(Instant, u64)>,
}

/// How long a throttle window lasts before the count starts again.
const THROTTLE_WINDOW: Duration = Duration::from_secs(1);

impl Throttle {
    /// A throttle of `bytes_per_second` (`f64::MAX` or infinite: none).
    pub fn new(bytes_per_second: f64) -> Self {
        Throttle { bytes_per_second, window: Mutex::new((Instant::now(), 0)) }
    }

    /// Counts `bytes` and sleeps as long as the rate asks.
    pub fn take(&self, bytes: u64) {
        if !self.bytes_per_second.is_finite() || self.bytes_per_second >= f64::MAX / 2.0 {
            return;
        }
        let wait = {
            let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
            let elapsed = w.0.elapsed();
            if elapsed >= THROTTLE_WINDOW
                && (w.1 as f64) <= self.bytes_per_second * elapsed.as_secs_f64()
            {
                *w = (Instant::now(), 0);
            }
            w.1 += bytes;
            let due = Duration::from_secs_f64(w.1 as f64 / self.bytes_per_second);
            due.saturating_sub(w.0.elapsed())
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of this process's thread named `name`, if it exists.
    fn nice_of_thread(name: &str) -> Option<i32> {
        std::fs::read_dir("/proc/self/task").unwrap().find_map(|task| {
            let dir = task.unwrap().path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            (comm.trim_end() == name).then(|| crate::storage::sys::thread_nice(&dir))
        })
    }

    #[test]
    fn cleaner_threads_run_below_normal_priority() {
        let config = CleanerConfig { enable: true, threads: 1, ..CleanerConfig::default() };
        let cleaner = LogCleaner::start(&config, Arc::new(Vec::new)).unwrap();
        // Lowered by the thread itself as it starts: wait for it to be so.
        let mut nice = None;
        for _ in 0..500 {
            nice = nice_of_thread("log-cleaner-0");
            if nice == Some(NICE) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let nice = nice.expect("a thread named log-cleaner-0");
        assert_eq!(nice, NICE);
        cleaner.shutdown();
    }

    #[test]
    fn the_throttle_holds_the_rate() {
        let t = Throttle::new(1_000_000.0);
        let started = Instant::now();
        for _ in 0..20 {
            t.take(10_000);
        }
        // 200 KB at 1 MB/s: about 200 ms.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(180), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        let none = Throttle::new(f64::MAX);
        let started = Instant::now();
        none.take(u64::MAX / 2);
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}
