//! A Dynamo stack of one test: a frontend and its workers, started with
//! the test's namespace, services and ports, ready once routable.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};

use super::openai::{self, Reply};
use super::plan::{self, Discovery, RequestPlane, StackPlan, MAX_SYSTEM_PORT};
use super::python::Dynamo;
use super::worker::Worker;
use crate::error::Error;
use crate::health::{self, Check, HttpProbe, Probe};
use crate::process::ManagedProcess;
use crate::services::Host;

/// How long [`StackBuilder::start`] waits for the stack to be routable
/// unless [`StackBuilder::timeout`] says otherwise.
pub const DEFAULT_STACK_TIMEOUT: Duration = Duration::from_secs(90);

/// Log lines of each process in a stack's failure report.
const TAIL_LINES: usize = 20;

/// Limit of one request the test sends the frontend.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The stack a test asks for; made by
/// [`TestContext::dynamo`](crate::TestContext::dynamo), started with
/// [`start`](StackBuilder::start).
#[must_use = "a stack starts only when `.start().await`ed"]
pub struct StackBuilder {
    host: Arc<dyn Host>,
    name: Option<String>,
    http_port: Option<u16>,
    frontend_args: Vec<OsString>,
    workers: Vec<Worker>,
    discovery: Discovery,
    request_plane: RequestPlane,
    timeout: Duration,
    python: Option<PathBuf>,
}

impl StackBuilder {
    pub(crate) fn new(host: Arc<dyn Host>) -> StackBuilder {
        StackBuilder {
            host,
            name: None,
            http_port: None,
            frontend_args: Vec::new(),
            workers: Vec::new(),
            discovery: Discovery::default(),
            request_plane: RequestPlane::default(),
            timeout: DEFAULT_STACK_TIMEOUT,
            python: None,
        }
    }

    /// Names a second (third, ...) stack of the same test: its namespace
    /// is `<test namespace>-<name>`, so it sees nothing of the others, and
    /// its processes are `<name>-frontend`, `<name>-mocker-1`, ...
    /// Default: the test's namespace, `frontend`, `mocker-1`.
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
    pub fn mocker(self, model: &str, model_dir: impl AsRef<std::path::Path>) -> Self {
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
    /// (default [`DEFAULT_STACK_TIMEOUT`]).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// The Python that runs Dynamo (default: `DYNAMO_PYTHON`, else
    /// `python3` on `PATH`).
    pub fn python(mut self, python: impl Into<PathBuf>) -> Self {
        self.python = Some(python.into());
        self
    }

    /// Starts the workers and the frontend, and waits until the stack is
    /// routable: the frontend's `/health` is healthy with every worker
    /// registered, `/v1/models` lists every model the workers serve, and a
    /// one-token completion of each answers 200 (404, 503 and "model not
    /// found" are retried). Fails at once if a process exits, and at the
    /// limit with what was awaited and every process's log tail. Every
    /// process is stopped at the test's teardown.
    pub async fn start(self) -> Result<Stack, Error> {
        self.check_name()?;
        let dynamo = find_dynamo(self.python.clone()).await?;
        self.check_services()?;
        if self.workers.is_empty() {
            return Err(Error::Dynamo(
                "a stack without workers serves nothing: add `.mocker(model, dir)` or \
                 `.worker(Worker::..)`"
                    .into(),
            ));
        }
        let http_port = match self.http_port {
            Some(port) => port,
            None => {
                let base = self.host.service_ports()?.dynamo_serve_base;
                self.host
                    .reserve_port_from(&self.scoped_name("dynamo_serve"), base)?
            }
        };
        let plan = StackPlan {
            namespace: self.scoped(self.host.namespace(), "-"),
            discovery: self.discovery,
            request_plane: self.request_plane,
            file_kv: self.host.output_dir().join(self.scoped("dynamo-kv", "-")),
        };
        let started = std::time::Instant::now();
        let mut workers = Vec::new();
        for (i, worker) in self.workers.iter().enumerate() {
            workers.push(self.start_worker(&plan, &dynamo, worker, i + 1).await?);
        }
        let base_url = format!("http://127.0.0.1:{http_port}");
        let models = served_models(&workers);
        let ready = routable(&base_url, &plan.namespace, &models, &workers);
        let frontend = self
            .host
            .process(&self.scoped_name("frontend"), dynamo.python.clone().into())
            .args(plan.frontend_args(http_port))
            .args(self.frontend_args.iter().cloned())
            .envs(plan.common_env())
            .ready(ready)
            .startup_timeout(self.timeout)
            .start()
            .await
            .map_err(|e| not_routable(&plan, &e.to_string(), &workers))?;
        self.host.note(&format!(
            "Dynamo stack `{}` routable in {:.1?}: frontend {base_url}, {} worker(s), models {models:?}",
            plan.namespace,
            started.elapsed(),
            workers.len()
        ));
        Ok(Stack {
            base_url,
            http_port,
            plan,
            dynamo,
            frontend,
            workers,
            models,
        })
    }

    /// `base` followed by `sep` and the stack's name, if it has one.
    fn scoped(&self, base: &str, sep: &str) -> String {
        match &self.name {
            Some(name) => format!("{base}{sep}{name}"),
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

    /// A name goes into the namespace: Dynamo, etcd keys and NATS subjects
    /// must all accept it.
    fn check_name(&self) -> Result<(), Error> {
        match &self.name {
            Some(name)
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
            {
                Err(Error::Dynamo(format!(
                    "stack name {name:?}: use lowercase letters, digits and `-` \
                     (it becomes part of the Dynamo namespace)"
                )))
            }
            _ => Ok(()),
        }
    }

    /// etcd and NATS are the test's (`services(..)`): the stack needs those
    /// its backends use.
    fn check_services(&self) -> Result<(), Error> {
        let env = self.host.child_env();
        let has = |key: &str| env.iter().any(|(k, _)| k == key);
        let missing = |what: &str, service: &str, instead: &str| {
            Error::Dynamo(format!(
                "the stack's {what} needs {service}, and this test has none: add \
                 `services({service})` to #[dynamo_test]{instead}"
            ))
        };
        if self.discovery == Discovery::Etcd && !has("ETCD_ENDPOINTS") {
            return Err(missing(
                "discovery (etcd)",
                "etcd",
                ", or use `.discovery(Discovery::File)`",
            ));
        }
        if self.request_plane == RequestPlane::Nats && !has("NATS_SERVER") {
            return Err(missing(
                "request plane (NATS)",
                "nats",
                ", or use `.request_plane(RequestPlane::Tcp)`",
            ));
        }
        Ok(())
    }

    async fn start_worker(
        &self,
        plan: &StackPlan,
        dynamo: &Dynamo,
        worker: &Worker,
        index: usize,
    ) -> Result<StackWorker, Error> {
        let name = worker
            .name
            .clone()
            .unwrap_or_else(|| self.scoped_name(&worker.default_name(index)));
        let system_port = self.host.reserve_port(&format!("{name}_system"))?;
        if system_port > MAX_SYSTEM_PORT {
            return Err(Error::Dynamo(format!(
                "worker `{name}`: reserved system port {system_port} is above {MAX_SYSTEM_PORT}, \
                 and Dynamo parses DYN_SYSTEM_PORT as an i16: keep DYNAMO_TEST_PORT_RANGE \
                 at or below {MAX_SYSTEM_PORT}"
            )));
        }
        let (program, args) = worker.command(plan, &dynamo.python);
        let process = self
            .host
            .process(&name, program)
            .args(args)
            .envs(plan.common_env())
            .envs(plan::worker_env(system_port))
            .envs(worker.env.iter().cloned())
            .start()
            .await?;
        Ok(StackWorker {
            name,
            models: worker.models.clone(),
            system_port,
            process,
        })
    }
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

fn served_models(workers: &[StackWorker]) -> Vec<String> {
    let mut models: Vec<String> = Vec::new();
    for model in workers.iter().flat_map(|w| &w.models) {
        if !models.contains(model) {
            models.push(model.clone());
        }
    }
    models
}

/// Routable: every worker alive, the frontend healthy with all of them,
/// every model listed and answering a one-token completion.
fn routable(
    base_url: &str,
    namespace: &str,
    models: &[String],
    workers: &[StackWorker],
) -> health::All {
    let frontend = health::dynamo_frontend(base_url)
        .namespace(namespace)
        .min_workers(workers.len());
    let mut probes: Vec<Box<dyn Probe>> =
        vec![Box::new(workers_alive(workers)), Box::new(frontend)];
    if !models.is_empty() {
        probes.push(Box::new(health::openai_models(base_url, models.to_vec())));
    }
    for model in models {
        probes.push(Box::new(health::openai_completion(base_url, model)));
    }
    health::all(probes)
}

/// Fatal as soon as a worker has exited: waiting on would only time out.
fn workers_alive(workers: &[StackWorker]) -> impl Probe {
    let processes: Vec<(String, ManagedProcess)> = workers
        .iter()
        .map(|w| (w.name.clone(), w.process.clone()))
        .collect();
    health::from_fn("every worker running", move || {
        let exited = processes
            .iter()
            .find_map(|(name, p)| Some((name.clone(), p.exit_status()?)));
        async move {
            match exited {
                Some((name, status)) => Check::fatal(format!("worker `{name}` exited ({status})")),
                None => Check::Ready,
            }
        }
    })
}

fn not_routable(plan: &StackPlan, why: &str, workers: &[StackWorker]) -> Error {
    let mut story = format!(
        "the Dynamo stack `{}` did not become routable: {why}",
        plan.namespace
    );
    for worker in workers {
        story.push_str(&format!(
            "\n--- worker `{}` ({}), log {}:\n{}",
            worker.name,
            worker.state(),
            worker.process.log_path().display(),
            worker.process.log_tail(TAIL_LINES)
        ));
    }
    Error::Dynamo(story)
}

/// A running stack: its frontend, its workers, and requests to it.
///
/// Its processes belong to the test: stopped at teardown, their logs in
/// the test's output dir and in the failure report.
#[derive(Debug)]
pub struct Stack {
    base_url: String,
    http_port: u16,
    plan: StackPlan,
    dynamo: Dynamo,
    frontend: ManagedProcess,
    workers: Vec<StackWorker>,
    models: Vec<String>,
}

/// One worker of a running [`Stack`].
#[derive(Debug, Clone)]
pub struct StackWorker {
    name: String,
    models: Vec<String>,
    system_port: u16,
    process: ManagedProcess,
}

impl StackWorker {
    /// Its process name (`mocker-1`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process: stop, kill, pause or restart it.
    pub fn process(&self) -> &ManagedProcess {
        &self.process
    }

    /// Its `DYN_SYSTEM_PORT`.
    pub fn system_port(&self) -> u16 {
        self.system_port
    }

    /// `http://127.0.0.1:<system port>`.
    pub fn system_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.system_port)
    }

    /// Probe of its own `/health` on the system port ([`health::dynamo_worker`]).
    pub fn health(&self) -> HttpProbe {
        health::dynamo_worker(&self.system_url())
    }

    /// The models it serves.
    pub fn models(&self) -> &[String] {
        &self.models
    }

    fn state(&self) -> String {
        match self.process.exit_status() {
            Some(status) => format!("exited: {status}"),
            None => "running".to_string(),
        }
    }
}

impl Stack {
    /// The frontend's base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// The frontend's HTTP port.
    pub fn port(&self) -> u16 {
        self.http_port
    }

    /// The Dynamo namespace of this stack (the test's).
    pub fn namespace(&self) -> &str {
        &self.plan.namespace
    }

    /// The endpoint its mockers serve, `dyn://<namespace>.backend.generate`.
    pub fn endpoint(&self) -> String {
        self.plan.endpoint()
    }

    /// The interpreter and Dynamo version the stack runs.
    pub fn dynamo(&self) -> &Dynamo {
        &self.dynamo
    }

    /// The frontend's process.
    pub fn frontend(&self) -> &ManagedProcess {
        &self.frontend
    }

    /// The workers, in the order they were added.
    pub fn workers(&self) -> &[StackWorker] {
        &self.workers
    }

    /// The models the stack was ready for.
    pub fn models(&self) -> &[String] {
        &self.models
    }

    /// The stack's routable readiness (what [`StackBuilder::start`] waited
    /// for), to wait for again, e.g. after a restart.
    pub fn routable(&self) -> impl Probe {
        routable(
            &self.base_url,
            &self.plan.namespace,
            &self.models,
            &self.workers,
        )
    }

    /// Probe: the frontend's `/health` lists exactly `n` workers (e.g. 1
    /// after one of two was killed).
    pub fn frontend_with_workers(&self, n: usize) -> impl Probe {
        health::dynamo_frontend(&self.base_url)
            .namespace(&self.plan.namespace)
            .workers(n)
    }

    /// A chat completion of `prompt` by `model`, at most `max_tokens`
    /// tokens. Any status but 200 is an error with the body.
    pub async fn chat(&self, model: &str, prompt: &str, max_tokens: u32) -> Result<Reply, Error> {
        let body = json!({
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
        });
        self.post_ok("/v1/chat/completions", &body).await
    }

    /// A (text) completion of `prompt` by `model`, at most `max_tokens` tokens.
    pub async fn completion(
        &self,
        model: &str,
        prompt: &str,
        max_tokens: u32,
    ) -> Result<Reply, Error> {
        let body = json!({"model": model, "prompt": prompt, "max_tokens": max_tokens});
        self.post_ok("/v1/completions", &body).await
    }

    /// The model ids `/v1/models` lists now.
    pub async fn list_models(&self) -> Result<Vec<String>, Error> {
        Ok(self.get("/v1/models").await?.model_ids())
    }

    /// `GET <frontend><path>`, whatever the status.
    pub async fn get(&self, path: &str) -> Result<Reply, Error> {
        self.send(Method::GET, path, None).await
    }

    /// `POST <frontend><path>` of `body` as JSON, whatever the status.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Reply, Error> {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn post_ok(&self, path: &str, body: &Value) -> Result<Reply, Error> {
        let reply = self.post(path, body).await?;
        if reply.status != 200 {
            return Err(Error::Dynamo(format!(
                "POST {}{path} answered HTTP {}: {}",
                self.base_url, reply.status, reply.raw
            )));
        }
        Ok(reply)
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply, Error> {
        let url = format!("{}{path}", self.base_url);
        openai::send(method, &url, body, REQUEST_TIMEOUT)
            .await
            .map_err(Error::Dynamo)
    }
}
