//! A running stack: its frontend, its workers, and the requests a test
//! sends it.

use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};

use super::openai::{self, Reply};
use super::plan::StackPlan;
use super::python::Dynamo;
use super::readiness::routable;
use crate::error::Error;
use crate::health::{self, HttpProbe, Probe};
use crate::process::ManagedProcess;

/// Lines of the frontend's log in a request error when it is unreachable.
const TAIL_LINES: usize = 20;

/// How much of a reply's body an error quotes.
const QUOTED_BODY: usize = 400;

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
    request_timeout: Duration,
}

/// Every model the workers serve, once each, in order.
pub(super) fn served_models(workers: &[StackWorker]) -> Vec<String> {
    let mut models: Vec<String> = Vec::new();
    for model in workers.iter().flat_map(|w| &w.models) {
        if !models.contains(model) {
            models.push(model.clone());
        }
    }
    models
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
    pub(super) fn new(
        name: String,
        models: Vec<String>,
        system_port: u16,
        process: ManagedProcess,
    ) -> StackWorker {
        StackWorker {
            name,
            models,
            system_port,
            process,
        }
    }

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
}

impl Stack {
    pub(super) fn new(
        http_port: u16,
        plan: StackPlan,
        dynamo: Dynamo,
        frontend: ManagedProcess,
        workers: Vec<StackWorker>,
        request_timeout: Duration,
    ) -> Stack {
        let models = served_models(&workers);
        Stack {
            base_url: super::plan::frontend_url(http_port),
            http_port,
            plan,
            dynamo,
            frontend,
            workers,
            models,
            request_timeout,
        }
    }

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

    /// The stack's routable readiness (what [`StackBuilder::start`](super::StackBuilder::start) waited
    /// for), to wait for again, e.g. after a restart.
    pub fn routable(&self) -> impl Probe {
        routable(&self.base_url, &self.plan.namespace, &self.workers)
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
                "POST {}{path}: expected HTTP 200, got {}: {}",
                self.base_url,
                reply.status,
                health::one_line(&reply.raw, QUOTED_BODY)
            )));
        }
        Ok(reply)
    }

    /// No answer: the error says so, and whether the frontend still runs.
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply, Error> {
        let url = format!("{}{path}", self.base_url);
        openai::send(method, &url, body, self.request_timeout)
            .await
            .map_err(|why| {
                let frontend = match self.frontend.exit_status() {
                    Some(status) => format!("the frontend has exited ({status})"),
                    None => "the frontend is running".to_string(),
                };
                Error::Dynamo(format!(
                    "{why}; {frontend}; its log {}:\n{}",
                    self.frontend.log_path().display(),
                    self.frontend.log_tail(TAIL_LINES)
                ))
            })
    }
}
