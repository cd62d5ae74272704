//! `Nats`: the handle a test gets for NATS.

use std::sync::Arc;
use std::time::Duration;

use super::instance::{Instance, Source};
use crate::error::Error;
use crate::process::ManagedProcess;

/// NATS for one test: URLs, ports, the test's subject prefix, and
/// (isolated mode) stop/start/kill.
///
/// Injecting it (`nats: Nats`) requires NATS, as `services(nats)` does.
#[derive(Clone, Debug)]
pub struct Nats {
    instance: Arc<Instance>,
}

impl Nats {
    pub(crate) fn new(instance: Arc<Instance>) -> Nats {
        Nats { instance }
    }

    /// The client URL, e.g. `nats://127.0.0.1:4222`.
    pub fn url(&self) -> &str {
        &self.instance.endpoints[0]
    }

    /// Every server URL (what children get as `NATS_SERVER`, comma-joined).
    pub fn urls(&self) -> &[String] {
        &self.instance.endpoints
    }

    /// The HTTP monitoring URL, e.g. `http://127.0.0.1:8222`, when the
    /// harness knows it (not for `NATS_SERVER`).
    pub fn monitor_url(&self) -> Option<String> {
        self.instance
            .ports
            .map(|p| format!("http://127.0.0.1:{}", p.second))
    }

    /// The client port, when the harness knows it.
    pub fn port(&self) -> Option<u16> {
        self.instance.ports.map(|p| p.client)
    }

    /// The monitoring port, when the harness knows it.
    pub fn monitor_port(&self) -> Option<u16> {
        self.instance.ports.map(|p| p.second)
    }

    /// Where the instance comes from.
    pub fn source(&self) -> Source {
        self.instance.source
    }

    /// This test's subject prefix, `<namespace>.`: subjects under it are
    /// the test's own on a shared server.
    pub fn subject_prefix(&self) -> String {
        format!("{}.", self.instance.namespace)
    }

    /// `subject_prefix() + name`.
    pub fn subject(&self, name: &str) -> String {
        format!("{}{name}", self.subject_prefix())
    }

    /// The nats-server process, in isolated mode.
    pub fn process(&self) -> Option<&ManagedProcess> {
        self.instance.process.as_ref()
    }

    /// Stops the isolated server gracefully (isolated mode only).
    pub async fn stop(&self) -> Result<(), Error> {
        self.instance.stop().await
    }

    /// Starts the isolated server again on the same ports (and data) and
    /// waits until healthy (isolated mode only).
    pub async fn start(&self) -> Result<(), Error> {
        self.instance.start().await
    }

    /// Kills the isolated server at once, SIGKILL (isolated mode only).
    pub fn kill(&self) -> Result<(), Error> {
        self.instance.kill()
    }

    /// Freezes the isolated server (SIGSTOP to its process group): hung,
    /// not dead; its clients' requests stall (isolated mode only).
    pub fn pause(&self) -> Result<(), Error> {
        self.instance.pause()
    }

    /// Lets a paused server run again, SIGCONT (isolated mode only).
    pub fn resume(&self) -> Result<(), Error> {
        self.instance.resume()
    }

    /// Stops and starts the isolated server on the same ports and data;
    /// healthy on return (isolated mode only).
    pub async fn restart(&self) -> Result<(), Error> {
        self.instance.restart().await
    }

    /// Waits up to `limit` until it answers its health check again (after a
    /// fault; any mode).
    pub async fn wait_healthy(&self, limit: Duration) -> Result<(), Error> {
        self.instance.wait_healthy(limit).await
    }
}
