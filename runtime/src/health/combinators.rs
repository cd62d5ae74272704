//! `all`, `any` and `from_fn`: probes built from other probes or closures.

use std::future::Future;
use std::time::Duration;

use super::{Check, CheckFuture, Probe};
use futures_util::future::join_all;

/// Ready when every probe is ready in the same attempt. See [`all`].
pub struct All {
    probes: Vec<Box<dyn Probe>>,
}

/// A probe that is ready when all `probes` are. Each attempt checks them
/// concurrently within one budget; the wait around it has one deadline.
pub fn all(probes: Vec<Box<dyn Probe>>) -> All {
    All { probes }
}

impl Probe for All {
    fn describe(&self) -> String {
        let parts: Vec<String> = self.probes.iter().map(|p| p.describe()).collect();
        format!("all of [{}]", parts.join(", "))
    }

    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        Box::pin(async move {
            let checks = join_all(self.probes.iter().map(|p| p.check(budget))).await;
            let mut first_not_ready = None;
            for (probe, check) in self.probes.iter().zip(checks) {
                match check {
                    Check::Ready => {}
                    Check::Fatal { reason } => {
                        return Check::fatal(format!("{}: {reason}", probe.describe()))
                    }
                    Check::NotReady { reason, body } => {
                        first_not_ready.get_or_insert(Check::NotReady {
                            reason: format!("{}: {reason}", probe.describe()),
                            body,
                        });
                    }
                }
            }
            first_not_ready.unwrap_or(Check::Ready)
        })
    }
}

/// Ready when any probe is ready. See [`any`].
pub struct Any {
    probes: Vec<Box<dyn Probe>>,
}

/// A probe that is ready when one of `probes` is; fatal only when all are.
pub fn any(probes: Vec<Box<dyn Probe>>) -> Any {
    Any { probes }
}

impl Probe for Any {
    fn describe(&self) -> String {
        let parts: Vec<String> = self.probes.iter().map(|p| p.describe()).collect();
        format!("any of [{}]", parts.join(", "))
    }

    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        Box::pin(async move {
            let checks = join_all(self.probes.iter().map(|p| p.check(budget))).await;
            if checks.iter().any(Check::is_ready) {
                return Check::Ready;
            }
            let all_fatal = checks.iter().all(|c| matches!(c, Check::Fatal { .. }));
            let reasons: Vec<String> = self
                .probes
                .iter()
                .zip(&checks)
                .map(|(p, c)| match c {
                    Check::NotReady { reason, .. } | Check::Fatal { reason } => {
                        format!("{}: {reason}", p.describe())
                    }
                    Check::Ready => format!("{}: ready", p.describe()),
                })
                .collect();
            if all_fatal {
                Check::fatal(reasons.join("; "))
            } else {
                Check::not_ready(reasons.join("; "))
            }
        })
    }
}

/// A probe from an async closure. See [`from_fn`].
pub struct FnProbe<F> {
    description: String,
    f: F,
}

/// A probe that calls `f` for each attempt.
///
/// `f` is a closure that returns a future: `|| async { .. }`, or a
/// non-capturing async closure `async || { .. }`. The future must be
/// `Send + 'static`, so it may not borrow from the closure.
///
/// **A capturing `async move || { .. }` closure is not accepted** ("async
/// closure does not implement `Fn` because it captures state from its
/// environment"): its future borrows the captured state, so it implements
/// only `AsyncFn`, and on stable Rust a bound on `AsyncFn` cannot require
/// that future to be `Send` (that needs return-type notation), which every
/// probe future must be. Write a plain closure that clones what it needs
/// into an `async move` block instead:
/// `|| { let x = x.clone(); async move { .. } }`.
///
/// ```
/// use dynamo_test::health::{self, Check};
/// let probe = health::from_fn("queue drained", || async {
///     let depth = 0; // ask the system under test
///     if depth == 0 { Check::Ready } else { Check::not_ready(format!("depth {depth}")) }
/// });
/// ```
///
/// A probe with state, here ready on its third attempt:
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use dynamo_test::health::{self, Check, Probe};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let calls = Arc::new(AtomicU32::new(0));
/// let probe = health::from_fn("third time lucky", {
///     let calls = calls.clone();
///     move || {
///         let calls = calls.clone();
///         async move {
///             match calls.fetch_add(1, Ordering::SeqCst) {
///                 0 | 1 => Check::not_ready("warming up"),
///                 _ => Check::Ready,
///             }
///         }
///     }
/// });
/// let ready = probe.wait(Duration::from_secs(5)).await.unwrap();
/// assert_eq!(ready.attempts, 3);
/// assert_eq!(calls.load(Ordering::SeqCst), 3);
/// # }
/// ```
pub fn from_fn<F, Fut>(description: impl Into<String>, f: F) -> FnProbe<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Check> + Send + 'static,
{
    FnProbe {
        description: description.into(),
        f,
    }
}

impl<F, Fut> Probe for FnProbe<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Check> + Send + 'static,
{
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn check(&self, _budget: Duration) -> CheckFuture<'_> {
        Box::pin((self.f)())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(c: Check) -> Box<dyn Probe> {
        from_fn("fixed", move || {
            let c = c.clone();
            async move { c }
        })
        .boxed()
    }

    #[tokio::test]
    async fn all_needs_every_probe() {
        let budget = Duration::from_secs(1);
        assert!(all(vec![fixed(Check::Ready), fixed(Check::Ready)])
            .check(budget)
            .await
            .is_ready());
        let c = all(vec![fixed(Check::Ready), fixed(Check::not_ready("b down"))])
            .check(budget)
            .await;
        assert_eq!(c, Check::not_ready("fixed: b down"));
        let c = all(vec![
            fixed(Check::not_ready("x")),
            fixed(Check::fatal("gone")),
        ])
        .check(budget)
        .await;
        assert_eq!(c, Check::fatal("fixed: gone"));
    }

    #[tokio::test]
    async fn any_needs_one_probe() {
        let budget = Duration::from_secs(1);
        assert!(any(vec![fixed(Check::not_ready("a")), fixed(Check::Ready)])
            .check(budget)
            .await
            .is_ready());
        let c = any(vec![fixed(Check::fatal("a")), fixed(Check::not_ready("b"))])
            .check(budget)
            .await;
        assert!(matches!(c, Check::NotReady { .. }));
        let c = any(vec![fixed(Check::fatal("a")), fixed(Check::fatal("b"))])
            .check(budget)
            .await;
        assert_eq!(c, Check::fatal("fixed: a; fixed: b"));
    }
}
