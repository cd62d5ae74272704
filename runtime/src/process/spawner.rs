//! The one thread that spawns every child.
//!
//! `PR_SET_PDEATHSIG` fires when the thread that forked the child exits,
//! not the process. Spawning from a tokio worker or a libtest thread would
//! kill the child when that thread ends; this thread lives as long as the
//! process.

use crate::sys::sync::lock;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();

/// Runs `job` on the spawner thread and returns its result.
pub(crate) fn on_spawner_thread<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    let (reply, result) = mpsc::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(job());
    });
    let sender = spawner()?;
    let sent = lock(sender).send(job);
    if sent.is_err() {
        return Err(std::io::Error::other(
            "the dynamo-test spawner thread is gone",
        ));
    }
    result
        .recv()
        .map_err(|_| std::io::Error::other("the dynamo-test spawner thread dropped a job"))
}

fn spawner() -> std::io::Result<&'static Mutex<mpsc::Sender<Job>>> {
    Ok(SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("dynamo-test-spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            });
        if let Err(e) = started {
            // Every spawn then reports the gone thread (its jobs cannot be sent).
            eprintln!("[dynamo-test] cannot start the spawner thread: {e}");
        }
        Mutex::new(tx)
    }))
}
