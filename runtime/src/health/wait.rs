//! The wait loop: attempt at once, back off briefly, give up with a story.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::sys::real_time;

use super::history::History;
use super::{Check, Probe};

/// Default time limit of one attempt (clamped to the time left).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// Upper bound of the backoff between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_millis(250);
/// Default backoff cap once the target answers (but is not ready).
const DEFAULT_BACKOFF_CAP: Duration = Duration::from_millis(50);
/// Backoff cap while connections are refused: such attempts cost a few
/// syscalls, and a server that starts listening is seen within this.
const REFUSED_BACKOFF_CAP: Duration = Duration::from_millis(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// Pauses also grow with the time already waited: a target that becomes
/// ready after `t` is seen at most about `t / 15` late, and a long wait
/// costs O(log t) + t / MAX_BACKOFF attempts instead of one per 10 ms.
/// Measured (BENCHMARKS.md): a 2 s refused wait costs ~14 ms CPU, not ~35.
const LATENESS_DIVISOR: u32 = 15;

/// `start + limit`, where a limit too large to add (`Duration::MAX`)
/// means "no limit" (a century), not an overflow panic.
pub(crate) fn deadline_after(start: Instant, limit: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    start.checked_add(limit).unwrap_or_else(|| start + CENTURY)
}

/// A boxed future borrowed from a [`Watch`].
pub(crate) type WatchFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something a wait keeps an eye on besides the probe: typically the
/// process that should become ready. Its exit ends the wait at once; its
/// activity (a new log line) triggers an early attempt.
pub(crate) trait Watch: Send + Sync {
    /// Resolves when there is news worth an early attempt.
    fn changed(&self) -> WatchFuture<'_, ()>;
    /// Resolves when waiting has become pointless (the process exited),
    /// with the reason (exit status, log tail).
    fn gone(&self) -> WatchFuture<'_, String>;
    /// State for an error report (process state, log path and tail).
    fn report(&self) -> String;
}

/// A successful wait.
#[derive(Debug, Clone)]
pub struct Ready {
    /// What was probed.
    pub probe: String,
    /// Time until ready.
    pub elapsed: Duration,
    /// Attempts made, the successful one included.
    pub attempts: u32,
}

/// A wait that ended without readiness.
#[derive(Debug, Clone)]
pub struct WaitError {
    /// What was probed.
    pub probe: String,
    /// `None` on timeout; the fatal reason otherwise.
    pub fatal: Option<String>,
    /// Time waited.
    pub elapsed: Duration,
    /// The limit.
    pub limit: Duration,
    /// Attempts made.
    pub attempts: u32,
    /// Outcomes of the attempts, compressed.
    pub history: String,
    /// Body of the last answer (truncated), if any.
    pub last_body: Option<String>,
    /// The watched process's state and log tail, if any.
    pub watched: Option<String>,
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.fatal {
            None => write!(
                f,
                "timed out waiting for {}: not ready after {:.2?} (limit {:?}), {} attempts: {}",
                self.probe, self.elapsed, self.limit, self.attempts, self.history
            )?,
            Some(reason) => write!(
                f,
                "gave up waiting for {} after {:.2?} (limit {:?}): {reason}; {} attempts: {}",
                self.probe, self.elapsed, self.limit, self.attempts, self.history
            )?,
        }
        if let Some(body) = &self.last_body {
            write!(f, "\nlast body: {body}")?;
        }
        if let Some(watched) = &self.watched {
            write!(f, "\n{watched}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WaitError {}

/// Waits until `probe` is ready, at most `timeout`, with default settings.
pub async fn wait(probe: &dyn Probe, timeout: Duration) -> Result<Ready, WaitError> {
    Wait::new(probe, timeout).run().await
}

/// A configurable wait; [`wait`] is `Wait::new(probe, timeout).run()`.
pub struct Wait<'a> {
    probe: &'a dyn Probe,
    timeout: Duration,
    attempt_timeout: Duration,
    backoff_cap: Duration,
    watch: Option<&'a dyn Watch>,
}

impl<'a> Wait<'a> {
    /// A wait for `probe`, at most `timeout`.
    pub fn new(probe: &'a dyn Probe, timeout: Duration) -> Self {
        Wait {
            probe,
            timeout,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            backoff_cap: DEFAULT_BACKOFF_CAP,
            watch: None,
        }
    }

    /// Limits each attempt (default 1 s; always clamped to the time left).
    pub fn attempt_timeout(mut self, limit: Duration) -> Self {
        self.attempt_timeout = limit;
        self
    }

    /// Caps the backoff between early attempts (default 50 ms; 10 ms while
    /// connections are refused). Later pauses grow with the time waited
    /// (about a fifteenth of it), never beyond [`MAX_BACKOFF`].
    pub fn backoff_cap(mut self, cap: Duration) -> Self {
        self.backoff_cap = cap.min(MAX_BACKOFF);
        self
    }

    /// Watches `watch` during the wait (see [`Watch`]).
    pub(crate) fn watch(mut self, watch: &'a dyn Watch) -> Self {
        self.watch = Some(watch);
        self
    }

    /// Runs the wait.
    pub async fn run(self) -> Result<Ready, WaitError> {
        let started = Instant::now();
        let deadline = deadline_after(started, self.timeout);
        let mut state = State::default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.error(started, state, None));
            }
            let budget = self.attempt_timeout.min(left);
            let check = tokio::select! {
                biased;
                reason = gone(self.watch) => return Err(self.error(started, state, Some(reason))),
                check = attempt(self.probe, budget) => check,
            };
            state.attempts += 1;
            let cheap = match check {
                Check::Ready => {
                    return Ok(Ready {
                        probe: self.probe.describe(),
                        elapsed: started.elapsed(),
                        attempts: state.attempts,
                    })
                }
                Check::Fatal { reason } => {
                    state.history.push(&reason);
                    return Err(self.error(started, state, Some(reason)));
                }
                Check::NotReady { reason, body } => {
                    state.history.push(&reason);
                    if body.is_some() {
                        state.last_body = body;
                    }
                    reason == "connection refused"
                }
            };
            let pause = next_pause(
                &mut state.backoff,
                cheap,
                self.backoff_cap,
                started.elapsed(),
            )
            .min(deadline.saturating_duration_since(Instant::now()));
            tokio::select! {
                biased;
                reason = gone(self.watch) => return Err(self.error(started, state, Some(reason))),
                () = changed(self.watch) => state.backoff.reset(),
                () = real_time::sleep(pause) => {}
            }
        }
    }

    fn error(&self, started: Instant, state: State, fatal: Option<String>) -> WaitError {
        WaitError {
            probe: self.probe.describe(),
            fatal,
            elapsed: started.elapsed(),
            limit: self.timeout,
            attempts: state.attempts,
            history: state.history.to_string(),
            last_body: state.last_body,
            watched: self.watch.map(|w| w.report()),
        }
    }
}

#[derive(Default)]
struct State {
    attempts: u32,
    history: History,
    last_body: Option<String>,
    backoff: Backoff,
}

/// One attempt, bounded from outside too (a probe may ignore its budget).
async fn attempt(probe: &dyn Probe, budget: Duration) -> Check {
    match real_time::timeout(budget, probe.check(budget)).await {
        Some(check) => check,
        None => Check::not_ready(format!("attempt timed out after {budget:?}")),
    }
}

async fn gone(watch: Option<&dyn Watch>) -> String {
    match watch {
        Some(w) => w.gone().await,
        None => std::future::pending().await,
    }
}

async fn changed(watch: Option<&dyn Watch>) {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

/// The pause before the next attempt, `elapsed` into the wait: the
/// backoff's next step under a cap that starts small (smaller still while
/// connections are refused, as such attempts are `cheap`) and grows with
/// the time waited, never beyond [`MAX_BACKOFF`].
fn next_pause(backoff: &mut Backoff, cheap: bool, cap: Duration, elapsed: Duration) -> Duration {
    let early_cap = if cheap {
        REFUSED_BACKOFF_CAP.min(cap)
    } else {
        cap
    };
    let cap = early_cap.max(elapsed / LATENESS_DIVISOR).min(MAX_BACKOFF);
    backoff.next(cap)
}

/// Exponential backoff with jitter: 1 ms, x1.5 per step, up to a cap.
#[derive(Default)]
struct Backoff {
    step: u32,
}

impl Backoff {
    fn next(&mut self, cap: Duration) -> Duration {
        let base = FIRST_BACKOFF
            .mul_f64(1.5f64.powi(self.step.min(30) as i32))
            .min(cap);
        self.step = self.step.saturating_add(1);
        // +-20% jitter, so that many waiters do not probe in lockstep.
        base.mul_f64(0.8 + 0.4 * fastrand::f64()).min(cap)
    }

    fn reset(&mut self) {
        self.step = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::from_fn;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn backoff_grows_to_its_cap() {
        let mut b = Backoff::default();
        let delays: Vec<Duration> = (0..30).map(|_| b.next(Duration::from_millis(50))).collect();
        assert!(delays[0] <= Duration::from_millis(2));
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(50)));
        assert!(delays[29] >= Duration::from_millis(40));
    }

    /// A backoff that has reached its largest base step.
    fn saturated() -> Backoff {
        Backoff { step: 1000 }
    }

    #[test]
    fn pauses_never_exceed_max_backoff_even_after_hours() {
        let hours = Duration::from_secs(5 * 3600);
        let mut b = Backoff::default();
        for cheap in [true, false] {
            for cap in [Duration::ZERO, MAX_BACKOFF, Duration::MAX] {
                for _ in 0..200 {
                    let pause = next_pause(&mut b, cheap, cap, hours);
                    assert!(pause <= MAX_BACKOFF, "{pause:?} with cap {cap:?}");
                }
            }
        }
        // Hours in, the pause sits at the cap (jitter only lowers it).
        let pause = next_pause(&mut saturated(), false, MAX_BACKOFF, hours);
        assert!(pause >= MAX_BACKOFF.mul_f64(0.8), "{pause:?}");
    }

    #[test]
    fn pauses_grow_with_the_time_waited() {
        let pause_at = |ms: u64| {
            next_pause(
                &mut saturated(),
                true,
                DEFAULT_BACKOFF_CAP,
                Duration::from_millis(ms),
            )
        };
        // Early on, refused connects are retried within REFUSED_BACKOFF_CAP.
        assert!(pause_at(0) <= REFUSED_BACKOFF_CAP, "{:?}", pause_at(0));
        // Jitter is +-20%, so a 3x larger cap always gives a larger pause.
        for (early, late) in [(0, 450), (450, 1350), (1350, 3750)] {
            let (a, b) = (pause_at(early), pause_at(late));
            assert!(a < b, "{a:?} at {early} ms, {b:?} at {late} ms");
        }
    }

    #[test]
    fn jitter_varies_pauses_at_the_same_step() {
        let pauses: Vec<Duration> = (0..20)
            .map(|_| {
                let mut b = Backoff { step: 10 };
                next_pause(&mut b, false, MAX_BACKOFF, Duration::ZERO)
            })
            .collect();
        let base = FIRST_BACKOFF.mul_f64(1.5f64.powi(10));
        for p in &pauses {
            assert!(
                *p >= base.mul_f64(0.79) && *p <= base.mul_f64(1.21),
                "{p:?}"
            );
        }
        let mut distinct = pauses.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 1, "no jitter: {pauses:?}");
    }

    /// With tokio's clock paused, any sleep before the first attempt would
    /// move the clock: equality means the attempt was made at once.
    #[tokio::test(start_paused = true)]
    async fn the_first_attempt_is_made_at_once() {
        let first = Arc::new(std::sync::Mutex::new(None));
        let probe = from_fn("records", {
            let first = first.clone();
            move || {
                let first = first.clone();
                async move {
                    let now = tokio::time::Instant::now();
                    first.lock().unwrap().get_or_insert(now);
                    Check::Ready
                }
            }
        });
        let started = tokio::time::Instant::now();
        wait(&probe, Duration::from_secs(5)).await.unwrap();
        let first = first.lock().unwrap().expect("the probe was called");
        assert_eq!(first - started, Duration::ZERO);
    }

    #[tokio::test]
    async fn ready_after_some_attempts() {
        let n = Arc::new(AtomicU32::new(0));
        let probe = from_fn("counter", {
            let n = n.clone();
            move || {
                let seen = n.fetch_add(1, Ordering::SeqCst);
                async move {
                    if seen >= 3 {
                        Check::Ready
                    } else {
                        Check::not_ready("warming up")
                    }
                }
            }
        });
        let ready = wait(&probe, Duration::from_secs(2)).await.unwrap();
        assert_eq!(ready.attempts, 4);
        assert_eq!(ready.probe, "counter");
    }

    #[tokio::test]
    async fn timeout_error_tells_the_story() {
        let probe = from_fn("never", || async { Check::not_ready("HTTP 503") });
        let started = Instant::now();
        let err = wait(&probe, Duration::from_millis(200)).await.unwrap_err();
        // Far below the probe's patience (it never gets ready): the limit held.
        assert!(started.elapsed() < Duration::from_secs(10));
        let text = err.to_string();
        assert!(
            text.starts_with("timed out waiting for never: not ready after"),
            "{text}"
        );
        assert!(text.contains("(limit 200ms)"), "{text}");
        assert!(
            text.contains(&format!(
                "{} attempts: HTTP 503 x{}",
                err.attempts, err.attempts
            )),
            "{text}"
        );
    }

    #[tokio::test]
    async fn fatal_stops_at_once() {
        let probe = from_fn("bad", || async { Check::fatal("bad URL") });
        let err = wait(&probe, Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(err.attempts, 1);
        assert!(err.to_string().contains("gave up waiting for bad"), "{err}");
        assert!(err.elapsed < Duration::from_secs(8), "not the 10 s limit");
    }

    #[tokio::test]
    async fn a_slow_attempt_is_cut_at_the_deadline() {
        let probe = from_fn("hangs", || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Check::Ready
        });
        let started = Instant::now();
        let err = wait(&probe, Duration::from_millis(150)).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not the 60 s attempt"
        );
        assert!(
            err.history.contains("attempt timed out after"),
            "{}",
            err.history
        );
    }
}
