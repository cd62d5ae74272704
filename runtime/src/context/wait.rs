//! `ctx.wait_for(probe)`: the one way to wait inside a test, with an
//! optional `.timeout(..)`, logged in the test's output.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use super::TestContext;
use crate::error::Error;
use crate::health::{self, Probe, Ready};

/// Limit of [`TestContext::wait_for`] unless [`WaitFor::timeout`] sets one.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A wait for one probe, made by [`TestContext::wait_for`]; `.await` it.
#[must_use = "a wait does nothing until `.await`ed"]
pub struct WaitFor<'a, P> {
    ctx: &'a TestContext,
    probe: P,
    timeout: Duration,
}

impl<'a, P: Probe> WaitFor<'a, P> {
    pub(super) fn new(ctx: &'a TestContext, probe: P) -> Self {
        WaitFor {
            ctx,
            probe,
            timeout: DEFAULT_WAIT_TIMEOUT,
        }
    }

    /// Waits at most `limit` (default [`DEFAULT_WAIT_TIMEOUT`]).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }
}

impl<'a, P: Probe + 'a> IntoFuture for WaitFor<'a, P> {
    type Output = Result<Ready, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let outcome = health::wait(&self.probe, self.timeout).await;
            match &outcome {
                Ok(ready) => self.ctx.note(&format!("ready: {ready}")),
                Err(e) => self.ctx.note(&format!("not ready: {e}")),
            }
            Ok(outcome?)
        })
    }
}
