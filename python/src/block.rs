//! Running the runtime's async code from Python: one tokio runtime per
//! process, the GIL released while a call waits, Ctrl-C honoured.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::prelude::*;

use crate::errors;

/// How often a waiting call looks for a signal (Ctrl-C) Python caught.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// The runtime, built by the first call that needs it. A child forked
/// after that inherits it without its threads, and without the helper
/// threads of the runtime's real-clock timers: its waits would never end,
/// so it gets an error saying so instead (reservations, which need no
/// thread, work there).
fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<(u32, tokio::runtime::Runtime)> = OnceLock::new();
    let (owner, rt) = match RUNTIME.get() {
        Some(built) => built,
        None => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("dynamo-test-py")
                .enable_all()
                .build()
                .map_err(|e| errors::harness(format!("starting the tokio runtime: {e}")))?;
            RUNTIME.get_or_init(|| (std::process::id(), rt))
        }
    };
    if *owner != std::process::id() {
        return Err(errors::harness(format!(
            "this process was forked from process {owner} after that one used dynamo_test's \
             waits or services, whose threads a forked child does not have: start the child \
             with multiprocessing's \"spawn\" or \"forkserver\" method (reservations work \
             in a forked child)"
        )));
    }
    Ok(rt)
}

/// What a signal caught during a wait does to the awaited work.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnSignal {
    /// Abandon it and raise (a readiness wait: nothing is lost).
    Abandon,
    /// Let it finish, then raise (a teardown: stopping it halfway would
    /// leave ports held and keys behind); a second signal abandons it.
    Finish,
}

/// Runs `future` on the runtime until it ends, without the GIL. A signal
/// Python's handler caught meanwhile (KeyboardInterrupt) abandons it.
pub fn block_on<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    run(py, future, OnSignal::Abandon)
}

/// Like [`block_on`], but a signal caught meanwhile is raised only once
/// `future` has finished: for work that must not stop halfway. A second
/// signal abandons it all the same.
pub fn block_on_to_the_end<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    run(py, future, OnSignal::Finish)
}

fn run<T, F>(py: Python<'_>, future: F, on_signal: OnSignal) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime()?;
    let (tx, mut rx) = std::sync::mpsc::channel();
    let task = rt.spawn(async move {
        let _ = tx.send(future.await);
    });
    let mut pending_signal = None;
    loop {
        // The receiver is not `Sync`: it goes into the GIL-free closure and back.
        let (received, back) = py.detach(move || (rx.recv_timeout(SIGNAL_CHECK), rx));
        rx = back;
        match received {
            Ok(value) => return pending_signal.map_or(Ok(value), Err),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Err(interrupted) = py.check_signals() {
                    // A second Ctrl-C ends even a teardown: it may hang.
                    if on_signal == OnSignal::Abandon || pending_signal.is_some() {
                        task.abort();
                        return Err(interrupted);
                    }
                    pending_signal = Some(interrupted);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(errors::harness(
                    "the call panicked in the runtime (a harness bug)",
                ));
            }
        }
    }
}
