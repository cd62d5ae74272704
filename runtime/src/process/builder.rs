//! `ctx.process(name, program)`: the builder of a managed child.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::command::Spec;
use super::log_wait::LogPattern;
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
    ready_logs: Vec<LogPattern>,
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
                env_remove: Vec::new(),
                cwd: None,
            },
            probes: Vec::new(),
            ready_logs: Vec::new(),
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

    /// Keeps an inherited env var from the child (one the builder sets
    /// still reaches it).
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.spec.env_remove.push(key.into());
        self
    }

    /// Sets env vars, as [`env`](Self::env) does for one.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.spec
            .env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
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

    /// Ready once a line of its output (stdout or stderr) matches
    /// `pattern`: a substring (`&str`, `String`) or a [`LogPattern::regex`],
    /// like testcontainers' `WaitFor::message_on_stdout`.
    ///
    /// Combines with the other probes and awaited lines: `start` returns
    /// once all of them pass, within the startup timeout. Lines count from
    /// the start of the process (also those written while another probe
    /// was waited for), each matched as it is written; an exit before the
    /// line fails at once, with the pattern and the log's tail. See also
    /// [`ManagedProcess::wait_for_log`] for lines after the start.
    ///
    /// ```no_run
    /// use dynamo_test::{find_free_port, health, process::LogPattern};
    ///
    /// # async fn doc(ctx: dynamo_test::TestContext) -> Result<(), Box<dyn std::error::Error>> {
    /// let port = find_free_port()?;
    /// let api = ctx
    ///     .process("api", "./api-server")
    ///     .arg(format!("--port={port}"))
    ///     .ready_log(LogPattern::regex(r"listening on 127\.0\.0\.1:\d+")?)
    ///     .ready_log("migrations done")
    ///     .ready(health::http(&format!("http://127.0.0.1:{port}/health")))
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn ready_log(mut self, pattern: impl Into<LogPattern>) -> Self {
        self.ready_logs.push(pattern.into());
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

    /// Starts the process and waits until every readiness probe passes
    /// and every [`ready_log`](Self::ready_log) line is written.
    ///
    /// Fails at once (not at the timeout) if the process exits while
    /// waiting, with its exit status and log tail. The process is stopped
    /// at the test's teardown, also when `start` fails.
    pub async fn start(self) -> Result<ManagedProcess, ProcessError> {
        let ProcessBuilder {
            owner,
            mut spec,
            probes,
            ready_logs,
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
        let process = ManagedProcess::spawn(
            spec,
            probes,
            ready_logs,
            startup_timeout,
            grace,
            log_path.clone(),
        )?;
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
