//! Waits on the real clock, whatever tokio's clock does.
//!
//! tokio's paused clock (`start_paused = true`, `tokio::time::pause()`)
//! auto-advances whenever the runtime idles: a `tokio::time::sleep` used as
//! a stop grace, a probe's attempt timeout or its backoff would expire in no
//! real time, and a graceful child would be SIGKILLed at once. Waits on the
//! world outside the process (children, sockets) use these timers instead:
//! they run on futures-timer's own thread, with std's `Instant`, and a
//! paused tokio clock neither shortens nor stretches them.

use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant};

use futures_util::future::{select, Either};

/// Waits longer than this never end (`Duration::MAX` means "as long as it
/// takes"; an `Instant` that far out would overflow).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Sleeps `duration` of real time.
pub(crate) async fn sleep(duration: Duration) {
    if duration >= FOREVER {
        return std::future::pending().await;
    }
    futures_timer::Delay::new(duration).await;
}

/// `work`'s output, or `None` if `limit` of real time passes first.
pub(crate) async fn timeout<F: Future>(limit: Duration, work: F) -> Option<F::Output> {
    match select(pin!(work), pin!(sleep(limit))).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(((), _)) => None,
    }
}

/// `work`'s output, or `None` if `deadline` (real time) passes first.
pub(crate) async fn timeout_at<F: Future>(deadline: Instant, work: F) -> Option<F::Output> {
    timeout(deadline.saturating_duration_since(Instant::now()), work).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_paused_tokio_clock_does_not_shorten_a_real_sleep() {
        let started = Instant::now();
        sleep(Duration::from_millis(50)).await;
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_runs_on_the_real_clock() {
        let started = Instant::now();
        let cut = timeout(Duration::from_millis(30), std::future::pending::<()>()).await;
        assert_eq!(cut, None);
        assert!(started.elapsed() >= Duration::from_millis(30));
        // A paused tokio sleep inside still auto-advances: only ours is real.
        let inner = timeout(Duration::from_secs(3600), async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            7
        });
        assert_eq!(inner.await, Some(7));
    }

    #[tokio::test]
    async fn forever_never_overflows() {
        let cut = timeout(Duration::from_millis(1), sleep(Duration::MAX)).await;
        assert_eq!(cut, None);
        let cut = timeout_at(Instant::now(), sleep(FOREVER)).await;
        assert_eq!(cut, None);
    }
}
