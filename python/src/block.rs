//! Running the runtime's async code from Python: one tokio runtime per
//! process, the GIL released while a call waits, Ctrl-C honoured.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::prelude::*;

use crate::errors;

/// How often a waiting call looks for a signal (Ctrl-C) Python caught.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("dynamo-test-py")
        .enable_all()
        .build()
        .map_err(|e| errors::harness(format!("starting the tokio runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Runs `future` on the runtime until it ends, without the GIL. A signal
/// Python's handler caught meanwhile (KeyboardInterrupt) abandons it.
pub fn block_on<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let task = rt.spawn(async move {
        let _ = tx.send(future.await);
    });
    let mut rx = rx;
    loop {
        // The receiver is not `Sync`: it goes into the GIL-free closure and back.
        let (received, back) = py.detach(move || (rx.recv_timeout(SIGNAL_CHECK), rx));
        rx = back;
        match received {
            Ok(value) => return Ok(value),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Err(interrupted) = py.check_signals() {
                    task.abort();
                    return Err(interrupted);
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
