//! Health probes and readiness waits.
//!
//! A [`Probe`] makes one attempt and answers [`Check::Ready`],
//! [`Check::NotReady`] (with a reason) or [`Check::Fatal`] (stop waiting).
//! [`wait`] (or [`Probe::wait`]) repeats it until ready: first attempt at
//! once, then a short jittered backoff, every attempt bounded by its own
//! timeout, and on failure an error that tells the story of the wait.
//!
//! ```no_run
//! use std::time::Duration;
//! use dynamo_test::health;
//!
//! # async fn doc() -> Result<(), dynamo_test::health::WaitError> {
//! health::http("http://127.0.0.1:8000/health")
//!     .expect_json(|v| v["status"] == "healthy")
//!     .wait(Duration::from_secs(30))
//!     .await?;
//! # Ok(()) }
//! ```

mod combinators;
mod history;
mod http;
pub(crate) mod http_client;
mod inherent;
mod nats_greeting;
mod services;
mod target;
mod tcp;
mod wait;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use combinators::{all, any, from_fn, All, Any, FnProbe};
pub(crate) use http::one_line;
pub use http::{http, HttpProbe, DEFAULT_MAX_BODY, DEFAULT_MAX_REDIRECTS};
pub use nats_greeting::{nats_client, NatsGreetingProbe};
pub use services::{
    dynamo_frontend, dynamo_worker, etcd, nats_monitor, openai_completion, openai_models,
    EtcdProbe, FrontendProbe,
};
pub use tcp::{tcp, TcpProbe};
pub(crate) use wait::deadline_after;
pub use wait::{wait, Ready, Wait, WaitError, DEFAULT_ATTEMPT_TIMEOUT, MAX_BACKOFF};
pub(crate) use wait::{Watch, WatchFuture};

/// The answer of one probe attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The target is ready.
    Ready,
    /// Not ready yet; worth another attempt.
    NotReady {
        /// Short reason, e.g. `connection refused` or `HTTP 503 {"health":"false"}`.
        reason: String,
        /// The response body, if there was one (truncated), for the error report.
        body: Option<String>,
    },
    /// Waiting is pointless (bad URL, the process exited, ...).
    Fatal {
        /// Why.
        reason: String,
    },
}

impl Check {
    /// A not-ready answer without a body.
    pub fn not_ready(reason: impl Into<String>) -> Check {
        Check::NotReady {
            reason: reason.into(),
            body: None,
        }
    }

    /// A fatal answer.
    pub fn fatal(reason: impl Into<String>) -> Check {
        Check::Fatal {
            reason: reason.into(),
        }
    }

    /// Whether this is [`Check::Ready`].
    pub fn is_ready(&self) -> bool {
        matches!(self, Check::Ready)
    }
}

/// A boxed future of one probe attempt.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Check> + Send + 'a>>;

/// One kind of readiness check. Implement it for checks of your own, or
/// use [`from_fn`] with a closure returning a future.
///
/// [`from_fn`] takes `|| { let x = x.clone(); async move { .. } }` (or a
/// non-capturing `async || { .. }`), not a capturing `async move || { .. }`
/// closure: that closure's future borrows its captures, and stable Rust
/// cannot require such a future to be `Send`. See [`from_fn`].
///
/// A probe of your own: a struct that answers each attempt.
///
/// ```
/// use std::time::Duration;
/// use dynamo_test::health::{Check, CheckFuture, Probe};
///
/// /// Ready once the file exists.
/// struct FileExists(std::path::PathBuf);
///
/// impl Probe for FileExists {
///     fn describe(&self) -> String {
///         format!("file {}", self.0.display())
///     }
///
///     fn check(&self, _budget: Duration) -> CheckFuture<'_> {
///         Box::pin(async move {
///             if self.0.exists() {
///                 Check::Ready
///             } else {
///                 Check::not_ready("no such file")
///             }
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let present = FileExists(std::env::temp_dir());
/// assert_eq!(present.wait(Duration::from_secs(1)).await.unwrap().attempts, 1);
///
/// let missing = FileExists("/no/such/file".into());
/// let err = missing.wait(Duration::from_millis(50)).await.unwrap_err();
/// assert!(err.to_string().starts_with("timed out waiting for file /no/such/file"));
/// assert!(err.history.starts_with("no such file x"));
/// # }
/// ```
pub trait Probe: Send + Sync {
    /// What is probed, for logs and errors (e.g. `HTTP GET http://127.0.0.1:8000/health`).
    fn describe(&self) -> String;

    /// Makes one attempt, which must end within `budget` (the wait loop
    /// also enforces it from outside).
    fn check(&self, budget: Duration) -> CheckFuture<'_>;

    /// Waits until ready, at most `timeout`, with the default settings.
    fn wait(&self, timeout: Duration) -> impl Future<Output = Result<Ready, WaitError>> + Send
    where
        Self: Sized,
    {
        wait(self, timeout)
    }

    /// Boxes the probe, for [`all`] and [`any`].
    fn boxed(self) -> Box<dyn Probe>
    where
        Self: Sized + 'static,
    {
        Box::new(self)
    }
}

impl<P: Probe + ?Sized> Probe for Box<P> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        (**self).check(budget)
    }
}

impl<P: Probe + ?Sized> Probe for &P {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        (**self).check(budget)
    }
}
