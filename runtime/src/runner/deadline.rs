//! A test's limit in wall-clock time.

use std::sync::mpsc;
use std::time::Duration;

/// A deadline in wall-clock time, immune to tokio's paused clock
/// (`start_paused` would otherwise fire a tokio timer at once).
pub(super) struct RealTimeDeadline {
    fired: tokio::sync::oneshot::Receiver<()>,
    /// Dropping this wakes the timer thread, which then exits.
    _cancel: mpsc::Sender<()>,
}

impl RealTimeDeadline {
    pub(super) fn start(limit: Duration) -> Self {
        let (cancel, cancelled) = mpsc::channel::<()>();
        let (fire, fired) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("dynamo-test-deadline".into())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
                    let _ = fire.send(());
                }
            });
        // Without a timer thread the deadline never fires; the test still runs.
        drop(spawned);
        RealTimeDeadline {
            fired,
            _cancel: cancel,
        }
    }

    pub(super) async fn elapsed(self) {
        let RealTimeDeadline { fired, _cancel } = self;
        if fired.await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
