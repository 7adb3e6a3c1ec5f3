//! Where queries run: a runtime of their own, never the one that takes events.
//!
//! Planning and executing a query is CPU work that does not yield for long stretches; on the
//! ingest runtime two heavy queries held both workers and `/api/event` and `/healthz` stopped
//! answering. Every query (SQL, report, segment) therefore runs here:
//! - on its own multi-thread runtime, whose threads have [`STACK_BYTES`] of stack (enough to plan
//!   what [`super::guard`] and the report limits let through) and run at the lowest priority
//!   (`SCHED_BATCH`, nice 19); in the collector it has one thread fewer than the cores, so a
//!   core is always free for ingestion ([`init_for_collector`]);
//! - at most [`QueryPool::running`] at once; up to [`QueryPool::waiting`] more wait their turn and
//!   anything past that is refused at once with [`super::Error::Busy`] (503 + `Retry-After`);
//! - under one deadline that covers the wait, planning and execution. When it passes the caller
//!   gets [`super::Error::Timeout`] at once, and the query's task is aborted, which drops its
//!   streams and stops its work at the next point it yields.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::Error;

/// Stack of each query thread. Only touched pages are committed, so this costs address space.
pub const STACK_BYTES: usize = 256 * 1024 * 1024;
/// Queries running at once.
const RUNNING: usize = 4;
/// Queries waiting for a turn (a dashboard asks for about a dozen panels at once).
const WAITING: usize = 64;
/// CPU niceness of the query threads (ingestion runs at the process's own, 0).
const NICE: i32 = 19;

/// The process's query runtime and its admission control.
pub struct QueryPool {
    runtime: tokio::runtime::Runtime,
    permits: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    running: usize,
    waiting: usize,
}

static POOL: OnceLock<QueryPool> = OnceLock::new();

/// The one query pool of this process (with a thread per core unless
/// [`init_for_collector`] made it first).
pub fn pool() -> &'static QueryPool {
    POOL.get_or_init(|| QueryPool::new(cores(), RUNNING, WAITING))
}

/// Make the pool leave a core to the collector: one thread fewer than the cores (at least one).
/// Measured on 2 cores with two CPU-bound queries: a query thread per core put the ingest p99
/// at 3.3-5.6x its idle value (the kernel's time slices, even at the lowest priority); one
/// thread kept it at 0.8-1.4x (BENCHMARKS.md). The command line keeps every core.
pub fn init_for_collector() -> &'static QueryPool {
    POOL.get_or_init(|| QueryPool::new(cores().saturating_sub(1).max(1), RUNNING, WAITING))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Gives the admission slot back when the query's task ends, however it ends.
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A query's turn to run ([`QueryPool::turn`]): its admission and its running permit.
pub struct Turn {
    _admitted: Admitted,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl QueryPool {
    fn new(threads: usize, running: usize, waiting: usize) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(4 * threads)
            .thread_name("footfall-query")
            .thread_stack_size(STACK_BYTES)
            .on_thread_start(lower_priority)
            .enable_all()
            .build()
            .expect("the query runtime starts (it only spawns threads)");
        Self { runtime, permits: Arc::new(Semaphore::new(running)), admitted: Arc::default(), running, waiting }
    }

    /// Queries run at once.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Queries that may wait for a turn.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// A place among the admitted queries, or [`Error::Busy`] when every one is taken.
    fn admit(&self) -> Result<Admitted, Error> {
        let capacity = self.running + self.waiting;
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= capacity {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Busy { running: self.running, waiting: self.waiting });
        }
        Ok(Admitted(self.admitted.clone()))
    }

    /// Wait for a turn to run a query in the calling task, which must already be on the query
    /// runtime ([`QueryPool::spawn`]): the Postgres wire connections live there, and their
    /// queries take turns with every other. The turn ends when it is dropped.
    pub async fn turn(&self) -> Result<Turn, Error> {
        let admitted = self.admit()?;
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| Error::Busy { running: 0, waiting: 0 })?;
        Ok(Turn { _admitted: admitted, _permit: permit })
    }

    /// Run `task` on the query runtime (a listener whose connections run queries).
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(task)
    }

    /// Run `work` on the query runtime within `deadline` (waiting for a turn included).
    pub async fn run<T, E, F>(&self, deadline: Duration, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let admitted = self.admit()?;
        let permits = self.permits.clone();
        let task = self.runtime.spawn(async move {
            let _admitted = admitted;
            let Ok(_permit) = permits.acquire_owned().await else {
                return Err(Error::Busy { running: 0, waiting: 0 }.into());
            };
            work.await
        });
        let abort = task.abort_handle();
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) if join.is_panic() => Err(Error::Panicked(panic_message(join.into_panic())).into()),
            Ok(Err(_)) => Err(Error::Timeout(deadline).into()),
            Err(_) => {
                abort.abort();
                Err(Error::Timeout(deadline).into())
            }
        }
    }
}

/// Lower the calling thread (a query thread) to Linux's `SCHED_BATCH` policy at niceness
/// [`NICE`] (both per thread on Linux). Niceness 10 alone was measured too weak: with two
/// CPU-bound queries on 2 cores the ingest p99 still tripled, every wake-up of an ingest thread
/// waiting out a query thread's slice. `SCHED_BATCH` threads yield to waking threads, and at
/// nice 19 they get about 1.5% of a contended core. `SCHED_IDLE` did as well for ingestion but
/// starved queries whenever anything else on the machine was busy.
fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param` only; pid 0 is the calling thread.
    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    let _ = rustix::process::setpriority_process(None, NICE);
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
    }

    #[test]
    fn runs_off_the_callers_runtime_with_a_large_stack() {
        let pool = QueryPool::new(2, 1, 1);
        let name = rt()
            .block_on(pool.run(Duration::from_secs(5), async {
                // 64 MiB on the stack would overflow a default 2 MiB thread.
                let big = [1u8; 64 * 1024 * 1024];
                Ok::<_, Error>((std::thread::current().name().map(str::to_owned), std::hint::black_box(&big)[12345]))
            }))
            .expect("runs");
        assert_eq!(name, (Some("footfall-query".to_owned()), 1));
    }

    #[test]
    fn refuses_past_its_queue_and_times_out_waiting_work() {
        let pool = QueryPool::new(2, 1, 1);
        let rt = rt();
        rt.block_on(async {
            let slow = || async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Ok::<(), Error>(())
            };
            let a = pool.run(Duration::from_secs(10), slow());
            let b = pool.run(Duration::from_millis(300), slow());
            let c = pool.run(Duration::from_secs(10), slow());
            // a runs, b waits and passes its deadline while waiting, c finds no room.
            let (a, b, c) = tokio::join!(a, b, c);
            assert!(a.is_ok());
            assert!(matches!(b, Err(Error::Timeout(_))), "{b:?}");
            assert!(matches!(c, Err(Error::Busy { running: 1, waiting: 1 })), "{c:?}");
            // Every slot is given back, aborted or not.
            pool.run(Duration::from_secs(5), async { Ok::<(), Error>(()) }).await.expect("room again");
            assert_eq!(pool.admitted.load(Ordering::SeqCst), 0);
        });
    }

    #[test]
    fn a_turn_taken_in_place_counts_against_the_same_slots() {
        let pool = QueryPool::new(2, 1, 1);
        rt().block_on(async {
            // A Postgres connection's statement holds the one running slot.
            let turn = pool.turn().await.expect("a turn");
            // A query sent meanwhile waits, and one more finds no room.
            let waiting = pool.run(Duration::from_millis(200), async { Ok::<(), Error>(()) });
            let (waited, refused) = tokio::join!(waiting, pool.turn());
            assert!(matches!(refused, Err(Error::Busy { running: 1, waiting: 1 })), "{:?}", refused.err());
            assert!(matches!(waited, Err(Error::Timeout(_))));
            drop(turn);
            pool.run(Duration::from_secs(5), async { Ok::<(), Error>(()) }).await.expect("room again");
            assert_eq!(pool.admitted.load(Ordering::SeqCst), 0);
        });
    }

    #[test]
    fn a_panicking_query_is_an_error_not_a_crash() {
        let pool = QueryPool::new(2, 1, 1);
        let r: Result<(), Error> = rt().block_on(pool.run(Duration::from_secs(5), async { panic!("boom") }));
        assert!(matches!(r, Err(Error::Panicked(m)) if m == "boom"));
    }
}
