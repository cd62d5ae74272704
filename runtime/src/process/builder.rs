//! `ctx.process(name, program)`: the builder of a managed child.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::command::Spec;
use super::managed::{ManagedProcess, ProcessError};
use super::owner::Owner;
use crate::health::{self, Probe};

/// Default limit for a process to pass its readiness probes.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time between SIGTERM and SIGKILL at teardown.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);

/// Describes a child process; [`ProcessBuilder::start`] starts it and waits
/// until it is ready. Made by `TestContext::process` (the test's context
/// owns what it starts).
#[must_use = "a process builder does nothing until `.start().await`"]
pub struct ProcessBuilder {
    owner: Arc<dyn Owner>,
    spec: Spec,
    probes: Vec<Arc<dyn Probe>>,
    startup_timeout: Duration,
    grace: Duration,
}

impl ProcessBuilder {
    pub(crate) fn new(owner: Arc<dyn Owner>, name: &str, program: OsString) -> Self {
        ProcessBuilder {
            owner,
            spec: Spec {
                name: name.to_string(),
                program,
                args: Vec::new(),
                env: Vec::new(),
                cwd: None,
            },
            probes: Vec::new(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            grace: DEFAULT_GRACE,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.spec.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.spec.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an env var for the child (the test process's env is untouched).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.spec.env.push((key.into(), value.into()));
        self
    }

    /// Runs the child in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spec.cwd = Some(dir.into());
        self
    }

    /// Adds a readiness probe; `start` returns once all of them pass.
    pub fn ready(mut self, probe: impl Probe + 'static) -> Self {
        self.probes.push(Arc::new(probe));
        self
    }

    /// Ready when an OpenAI-compatible server at `base_url` (e.g. a Dynamo
    /// frontend) says `/health` is healthy and lists every one of `models`
    /// in `/v1/models`.
    pub fn ready_openai<I, S>(self, base_url: &str, models: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ready(health::dynamo_frontend(base_url))
            .ready(health::openai_models(base_url, models))
    }

    /// Limits the time to pass the readiness probes (default 60 s).
    pub fn startup_timeout(mut self, limit: Duration) -> Self {
        self.startup_timeout = limit;
        self
    }

    /// Time between SIGTERM and SIGKILL at teardown (default 3 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Starts the process and waits until every readiness probe passes.
    ///
    /// Fails at once (not at the timeout) if the process exits while
    /// waiting, with its exit status and log tail. The process is stopped
    /// at the test's teardown, also when `start` fails.
    pub async fn start(self) -> Result<ManagedProcess, ProcessError> {
        let ProcessBuilder {
            owner,
            mut spec,
            probes,
            startup_timeout,
            grace,
        } = self;
        // The test's env for children (services, namespace) first; the
        // builder's own settings win.
        let mut env: Vec<(OsString, OsString)> = owner
            .child_env()
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        env.append(&mut spec.env);
        spec.env = env;
        let name = spec.name.clone();
        let log_path = owner.new_log_path(&name);
        let process =
            ManagedProcess::spawn(spec, probes, startup_timeout, grace, log_path.clone())?;
        owner.adopt(&process);
        let started = std::time::Instant::now();
        process.wait_ready().await?;
        owner.note(&format!(
            "process `{name}` (pid {}) ready in {:.1?}",
            process.pid(),
            started.elapsed()
        ));
        Ok(process)
    }
}
