//! Running a test under a limit on a thread of its own, so that a body that
//! blocks its thread (`std::thread::sleep`, a deadlock) cannot stop the
//! test's thread from tearing down and failing at the limit.

use std::sync::mpsc;
use std::time::Duration;

use super::Ending;
use crate::context::{log, TestContext};
use crate::error::Error;

/// What the thread running a test under a limit tells the test's thread.
enum Report {
    /// Setup and body are over (done, failed, or cut at the deadline);
    /// teardown is under way on that thread. The limit no longer applies.
    BodyEnded,
    /// Teardown is over too: the verdict.
    Done(Ending),
}

/// How long past the limit the test's thread waits for the runtime's own
/// deadline to report, before it concludes that the thread is blocked.
const REPORT_MARGIN: Duration = Duration::from_millis(250);

/// Runs `work` (setup, body, teardown) on a thread of its own, named like
/// the test's (libtest captures its output too), and waits at most `limit`
/// for its body to end. A thread whose body has not ended by then is
/// abandoned: this thread tears the context down itself and reports the
/// timeout. `work` calls the function it is given when the body ends.
pub(super) fn supervise(
    ctx: &TestContext,
    limit: Duration,
    work: impl FnOnce(&dyn Fn()) -> Ending + Send + 'static,
) -> Ending {
    let (reports, received) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(
            std::thread::current()
                .name()
                .unwrap_or("dynamo-test-body")
                .to_string(),
        )
        .spawn(move || {
            let body_ended = {
                let reports = reports.clone();
                move || {
                    let _ = reports.send(Report::BodyEnded);
                }
            };
            let ending = work(&body_ended);
            let _ = reports.send(Report::Done(ending));
        });
    if let Err(e) = spawned {
        return Ending::Setup(Error::io("spawning the test's thread", e));
    }
    match received.recv_timeout(limit.saturating_add(REPORT_MARGIN)) {
        Ok(Report::Done(ending)) => ending,
        Ok(Report::BodyEnded) => verdict_after_teardown(&received),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            teardown_here(ctx);
            Ending::TimedOut(limit)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => lost_thread(),
    }
}

/// Waits for the verdict of a thread that is tearing down (teardown has
/// its own bounds: process grace periods, the runtime's shutdown).
fn verdict_after_teardown(received: &mpsc::Receiver<Report>) -> Ending {
    loop {
        match received.recv() {
            Ok(Report::Done(ending)) => return ending,
            Ok(Report::BodyEnded) => continue,
            Err(_) => return lost_thread(),
        }
    }
}

/// The test's thread ended without a verdict: a panic outside the body.
fn lost_thread() -> Ending {
    Ending::Setup(Error::io(
        "running the test's thread",
        std::io::Error::other("it ended without a verdict (a panic during teardown?)"),
    ))
}

/// Tears `ctx` down on this thread, on a runtime of its own (the test's
/// runtime is stuck on its thread).
fn teardown_here(ctx: &TestContext) {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(async {
            crate::report::observe(ctx).await;
            ctx.teardown().await;
        }),
        Err(e) => log(ctx.name(), &format!("teardown skipped: no runtime: {e}")),
    }
}
