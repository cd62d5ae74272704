//! `.wait(timeout)` on every probe of this module without importing the
//! [`Probe`] trait, and how a passed wait reads in a log.

use std::fmt;
use std::time::Duration;

use super::{
    wait, All, Any, EtcdProbe, FnProbe, FrontendProbe, HttpProbe, NatsGreetingProbe, Probe,
};
use super::{Ready, TcpProbe, WaitError};

/// Inherent `wait` methods: they take precedence over the trait's, do the
/// same, and need no `use dynamo_test::health::Probe`.
macro_rules! inherent_wait {
    ($($ty:ty),* $(,)?) => {$(
        impl $ty {
            /// Waits until ready, at most `timeout`, with the default
            /// settings (see [`wait`](super::wait)).
            pub async fn wait(&self, timeout: Duration) -> Result<Ready, WaitError> {
                wait(self, timeout).await
            }
        }
    )*};
}

inherent_wait!(
    HttpProbe,
    EtcdProbe,
    TcpProbe,
    NatsGreetingProbe,
    FrontendProbe,
    All,
    Any
);

impl<F> FnProbe<F>
where
    FnProbe<F>: Probe,
{
    /// Waits until ready, at most `timeout`, with the default settings.
    pub async fn wait(&self, timeout: Duration) -> Result<Ready, WaitError> {
        wait(self, timeout).await
    }
}

/// `HTTP GET http://127.0.0.1:8000/health in 12.3ms (4 attempts)`.
impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {:.1?} ({} attempts)",
            self.probe, self.elapsed, self.attempts
        )
    }
}
