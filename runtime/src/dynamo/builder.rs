//! The stack a test asks for, and how it is started: checks first (so
//! that every mistake is named before a process runs), then the workers,
//! then the frontend, ready once routable.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::host::StackHost;
use super::plan::{self, Discovery, EventPlane, RequestPlane, StackPlan, MAX_SYSTEM_PORT};
use super::python::Dynamo;
use super::readiness::{not_routable, routable};
use super::stack::{Stack, StackWorker};
use super::worker::Worker;
use crate::error::Error;

/// How long [`StackBuilder::start`] waits for the stack to be routable
/// unless [`StackBuilder::timeout`] says otherwise.
pub const DEFAULT_STACK_TIMEOUT: Duration = Duration::from_secs(90);

/// Limit of one request the test sends the frontend, unless
/// [`StackBuilder::request_timeout`] says otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The stack a test asks for; made by
/// `ctx.dynamo()` (`TestContext::dynamo`), started with
/// [`start`](StackBuilder::start).
#[must_use = "a stack starts only when `.start().await`ed"]
pub struct StackBuilder {
    host: Arc<dyn StackHost>,
    name: Option<String>,
    http_port: Option<u16>,
    frontend_args: Vec<OsString>,
    workers: Vec<Worker>,
    discovery: Discovery,
    request_plane: RequestPlane,
    timeout: Duration,
    request_timeout: Duration,
    python: Option<PathBuf>,
}

impl StackBuilder {
    pub(crate) fn new(host: Arc<dyn StackHost>) -> StackBuilder {
        StackBuilder {
            host,
            name: None,
            http_port: None,
            frontend_args: Vec::new(),
            workers: Vec::new(),
            discovery: Discovery::default(),
            request_plane: RequestPlane::default(),
            timeout: DEFAULT_STACK_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            python: None,
        }
    }

    /// Names a second (third, ...) stack of the same test: its namespace
    /// is `<test namespace>-<name>`, so it sees nothing of the others, and
    /// its processes are `<name>-frontend`, `<name>-mocker-1`, ...
    /// Default: the test's namespace, `frontend`, `mocker-1`; a test has
    /// at most one stack without a name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// The frontend's HTTP port, e.g. the test's `ports.dynamo_serve`.
    /// Default: the first free port from the plan's `dynamo_serve_base`
    /// (8000), reserved for the test.
    pub fn frontend(mut self, http_port: u16) -> Self {
        self.http_port = Some(http_port);
        self
    }

    /// Adds arguments to `python -m dynamo.frontend` (e.g. `--router-mode kv`).
    pub fn frontend_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.frontend_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds a mocker worker serving `model` from `model_dir` (see
    /// [`tiny_model`](super::tiny_model)); call it again for more workers.
    pub fn mocker(self, model: &str, model_dir: impl AsRef<Path>) -> Self {
        self.worker(Worker::mocker(model, model_dir))
    }

    /// Adds a worker (see [`Worker`]).
    pub fn worker(mut self, worker: Worker) -> Self {
        self.workers.push(worker);
        self
    }

    /// Where the processes find each other (default [`Discovery::Etcd`]).
    pub fn discovery(mut self, discovery: Discovery) -> Self {
        self.discovery = discovery;
        self
    }

    /// How requests reach workers (default [`RequestPlane::Tcp`]).
    pub fn request_plane(mut self, plane: RequestPlane) -> Self {
        self.request_plane = plane;
        self
    }

    /// How long [`start`](Self::start) waits for the stack to be routable
    /// (default [`DEFAULT_STACK_TIMEOUT`]). Keep it below the test's own
    /// `timeout`, or the test's timeout fires first, without the story.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// The limit of each request [`Stack::chat`] and friends send
    /// (default [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn request_timeout(mut self, limit: Duration) -> Self {
        self.request_timeout = limit;
        self
    }

    /// The Python that runs Dynamo (default: `DYNAMO_PYTHON`, else
    /// `python3` on `PATH`).
    pub fn python(mut self, python: impl Into<PathBuf>) -> Self {
        self.python = Some(python.into());
        self
    }

    /// Starts the workers and the frontend, and waits until the stack is
    /// routable: the frontend's `/health` is healthy with every worker of
    /// the stack's namespace registered, `/v1/models` lists every model the
    /// workers serve, and a one-token completion of each answers 200 (404,
    /// 503 and "model not found" are retried). Mistakes in the request
    /// (names, services, ports) are reported before anything starts; a
    /// process that exits fails the start at once; at the limit the error
    /// says what was awaited and shows every process's log tail. Every
    /// process is stopped at the test's teardown.
    pub async fn start(self) -> Result<Stack, Error> {
        self.check()?;
        let event_plane = self.event_plane();
        let dynamo = find_dynamo(self.python.clone()).await?;
        let stack_dir = self.claim_dir()?;
        let http_port = self.http_port()?;
        let system_ports = self.system_ports()?;
        let plan = StackPlan {
            namespace: self.scoped(self.host.namespace()),
            discovery: self.discovery,
            request_plane: self.request_plane,
            event_plane,
            file_kv: stack_dir.join("kv"),
        };
        let started = std::time::Instant::now();
        let mut workers = Vec::new();
        for ((i, worker), port) in self.workers.iter().enumerate().zip(system_ports) {
            match self.start_worker(&plan, &dynamo, worker, i + 1, port).await {
                Ok(started) => workers.push(started),
                Err(e) => return Err(not_routable(&plan, &e.to_string(), &workers)),
            }
        }
        let ready = routable(&plan::frontend_url(http_port), &plan.namespace, &workers);
        let frontend = self
            .dynamo_process(&self.scoped_name("frontend"), dynamo.python.clone().into())
            .args(plan.frontend_args(http_port))
            .args(self.frontend_args.iter().cloned())
            .envs(plan.common_env())
            .ready(ready)
            .startup_timeout(self.timeout)
            .start()
            .await
            .map_err(|e| not_routable(&plan, &e.to_string(), &workers))?;
        let stack = Stack::new(
            http_port,
            plan,
            dynamo,
            frontend,
            workers,
            self.request_timeout,
        );
        self.host.note(&format!(
            "Dynamo stack `{}` routable in {:.1?}: frontend {}, {} worker(s), models {:?}",
            stack.namespace(),
            started.elapsed(),
            stack.url(),
            stack.workers().len(),
            stack.models()
        ));
        Ok(stack)
    }

    /// Everything that can be told wrong before a process starts, in one
    /// error.
    fn check(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if let Some(name) = &self.name {
            problems.extend(bad_name("stack name", name));
        }
        if self.workers.is_empty() {
            problems.push(
                "a stack without workers serves nothing: add `.mocker(model, dir)` or \
                 `.worker(Worker::..)`"
                    .to_string(),
            );
        }
        for (i, worker) in self.workers.iter().enumerate() {
            let name = self.worker_name(worker, i + 1);
            if let Some(given) = &worker.name {
                problems.extend(bad_name("worker name", given));
            }
            if worker.models.is_empty() {
                problems.push(format!(
                    "worker `{name}` serves no model, so the stack could not tell when it is \
                     routable: add `.serves(\"<model>\")`"
                ));
            }
        }
        problems.extend(self.missing_services());
        match problems.is_empty() {
            true => Ok(()),
            false => Err(Error::Dynamo(format!(
                "cannot start the Dynamo stack: {}",
                problems.join("; ")
            ))),
        }
    }

    /// etcd and NATS are the test's (`services(..)`): the stack needs those
    /// its backends use.
    fn missing_services(&self) -> Vec<String> {
        let mut missing = Vec::new();
        let lacks = |what: &str, service: &str, instead: &str| {
            format!(
                "the stack's {what} needs {service}, and this test has none: add \
                 `services({service})` to #[dynamo_test]{instead}"
            )
        };
        if self.discovery == Discovery::Etcd && !self.has_env("ETCD_ENDPOINTS") {
            missing.push(lacks(
                "discovery (etcd)",
                "etcd",
                ", or use `.discovery(Discovery::File)`",
            ));
        }
        if self.request_plane == RequestPlane::Nats && !self.has_env("NATS_SERVER") {
            missing.push(lacks(
                "request plane (NATS)",
                "nats",
                ", or use `.request_plane(RequestPlane::Tcp)`",
            ));
        }
        missing
    }

    fn has_env(&self, key: &str) -> bool {
        self.host.child_env().iter().any(|(k, _)| k == key)
    }

    /// NATS for events when the test has it; ZMQ otherwise.
    fn event_plane(&self) -> EventPlane {
        match self.has_env("NATS_SERVER") {
            true => EventPlane::Nats,
            false => EventPlane::Zmq,
        }
    }

    /// The stack's own directory (discovery files), claimed once per test
    /// and name: a second stack without a name would share the first one's
    /// namespace and see its workers.
    fn claim_dir(&self) -> Result<PathBuf, Error> {
        let dir = self
            .host
            .output_dir()
            .join(self.scoped_name("dynamo-stack"));
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Dynamo(match &self.name {
                    None => "this test already has a stack without a name: give the second one \
                             its own namespace with `.name(\"b\")`"
                        .to_string(),
                    Some(name) => format!("this test already has a stack named {name:?}"),
                }))
            }
            Err(e) => Err(Error::io(format!("creating {}", dir.display()), e)),
        }
    }

    fn http_port(&self) -> Result<u16, Error> {
        match self.http_port {
            Some(port) => Ok(port),
            None => {
                let base = self.host.service_ports()?.dynamo_serve_base;
                self.host
                    .reserve_port_from(&self.scoped_name("dynamo_serve"), base)
            }
        }
    }

    /// A system port per worker, all reserved before any starts. Dynamo
    /// parses `DYN_SYSTEM_PORT` as an `i16`: a random port above 32767 (a
    /// `DYNAMO_TEST_PORT_RANGE` that goes higher) is replaced by the first
    /// free one from the range's usual bottom.
    fn system_ports(&self) -> Result<Vec<u16>, Error> {
        let mut ports = Vec::new();
        for (i, worker) in self.workers.iter().enumerate() {
            let name = format!("{}_system", self.worker_name(worker, i + 1));
            let mut port = self.host.reserve_port(&name)?;
            if port > MAX_SYSTEM_PORT {
                port = self.host.reserve_port_from(&name, SYSTEM_PORT_FALLBACK)?;
            }
            if port > MAX_SYSTEM_PORT {
                return Err(Error::Dynamo(format!(
                    "no free system port at or below {MAX_SYSTEM_PORT} for worker \
                     `{name}` (Dynamo parses DYN_SYSTEM_PORT as an i16)"
                )));
            }
            ports.push(port);
        }
        Ok(ports)
    }

    async fn start_worker(
        &self,
        plan: &StackPlan,
        dynamo: &Dynamo,
        worker: &Worker,
        index: usize,
        system_port: u16,
    ) -> Result<StackWorker, Error> {
        let name = self.worker_name(worker, index);
        let (program, args) = worker.command(plan, &dynamo.python);
        let process = self
            .dynamo_process(&name, program)
            .args(args)
            .envs(plan.common_env())
            .envs(plan::worker_env(system_port))
            .envs(worker.env.iter().cloned())
            .start()
            .await?;
        Ok(StackWorker::new(
            name,
            worker.models.clone(),
            system_port,
            process,
        ))
    }

    /// A process of the stack: without the inherited variables that would
    /// undo its isolation.
    fn dynamo_process(&self, name: &str, program: OsString) -> crate::process::ProcessBuilder {
        plan::INHERITED_UNSET
            .iter()
            .fold(self.host.process(name, program), |builder, key| {
                builder.env_remove(key)
            })
    }

    fn worker_name(&self, worker: &Worker, index: usize) -> String {
        worker
            .name
            .clone()
            .unwrap_or_else(|| self.scoped_name(&worker.default_name(index)))
    }

    /// `base-<stack name>`, or `base` for the unnamed stack.
    fn scoped(&self, base: &str) -> String {
        match &self.name {
            Some(name) => format!("{base}-{name}"),
            None => base.to_string(),
        }
    }

    /// A process name: `<stack name>-<name>`, or `name` alone.
    fn scoped_name(&self, name: &str) -> String {
        match &self.name {
            Some(stack) => format!("{stack}-{name}"),
            None => name.to_string(),
        }
    }
}

/// Where a worker's system port is looked for when a random one is above
/// 32767: the bottom of the harness's default range.
const SYSTEM_PORT_FALLBACK: u16 = 20000;

/// A name that goes into a namespace, a log file name and a port label:
/// Dynamo, etcd keys and NATS subjects must all accept it.
fn bad_name(what: &str, name: &str) -> Option<String> {
    let fine = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (!fine).then(|| format!("{what} {name:?}: use lowercase letters, digits and `-`"))
}

/// The interpreter given, or the one found; checked either way.
async fn find_dynamo(python: Option<PathBuf>) -> Result<Dynamo, Error> {
    let found = tokio::task::spawn_blocking(move || match python {
        Some(path) => Dynamo::at(path),
        None => Dynamo::find(),
    })
    .await
    .map_err(|e| Error::Dynamo(format!("looking for Dynamo failed: {e}")))?;
    Ok(found?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_a_namespace_takes() {
        assert_eq!(bad_name("stack name", "b-2"), None);
        for bad in ["", "B", "a_b", "a b", "ä"] {
            let problem = bad_name("stack name", bad).unwrap();
            assert!(problem.contains(&format!("{bad:?}")), "{problem}");
        }
    }
}
