//! Probes for the services of a Dynamo-style deployment: etcd, NATS, an
//! OpenAI-compatible model server and a Dynamo frontend.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::combinators::{all, All};
use super::http::{http, one_line, HttpProbe, Judge};
use super::{Check, CheckFuture, Probe};

/// etcd is healthy: `GET {client_url}/health` answers `{"health":"true"}`
/// (etcd 3.4, and 3.5+ with `"reason":""`). A 503 is reported with etcd's
/// own reason; etcd 3.4 gives none, so the probe then asks the member's
/// `/v3/maintenance/status` and reports its errors (`etcdserver: no
/// leader` when a cluster lost its quorum). Note that etcd's port opens
/// before it has a leader: TCP-open is not ready.
pub fn etcd(client_url: &str) -> EtcdProbe {
    EtcdProbe {
        health: http(join(client_url, "/health"))
            .label("etcd health")
            .judge(Arc::new(judge_etcd)),
        status: http(join(client_url, "/v3/maintenance/status"))
            .method("POST")
            .body("{}")
            .label("etcd status")
            .judge(Arc::new(judge_etcd_status)),
    }
}

/// Probe: etcd's `/health`, explained by its status when etcd gives no
/// reason (see [`etcd`]).
#[derive(Clone)]
pub struct EtcdProbe {
    health: HttpProbe,
    /// Asked only when `/health` says false without a reason.
    status: HttpProbe,
}

impl std::fmt::Debug for EtcdProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Probe for EtcdProbe {
    fn describe(&self) -> String {
        self.health.describe()
    }

    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            match self.health.check(budget).await {
                Check::NotReady { reason, body } if reason.ends_with(NO_REASON) => {
                    let left = budget.saturating_sub(started.elapsed());
                    let why = match self.status.check(left).await {
                        Check::NotReady { reason: why, .. } | Check::Fatal { reason: why } => why,
                        Check::Ready => "its status names a leader".to_string(),
                    };
                    Check::NotReady {
                        reason: format!("{reason}; {why}"),
                        body,
                    }
                }
                other => other,
            }
        })
    }
}

/// What the health judge says when etcd gives no reason.
const NO_REASON: &str = "no reason given";

/// Ready: the member names a leader and reports no errors.
fn judge_etcd_status(status: u16, body: &str) -> Check {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let Some(json) = json.filter(|_| status == 200) else {
        return Check::not_ready(format!("status: HTTP {status} {}", one_line(body, 120)));
    };
    let errors: Vec<&str> = json["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let leader = json["leader"].as_str().filter(|l| *l != "0");
    match (errors.is_empty(), leader) {
        (true, Some(_)) => Check::Ready,
        (true, None) => Check::not_ready("etcd's status names no leader"),
        (false, _) => Check::not_ready(format!("etcd's status says: {}", errors.join("; "))),
    }
}

fn judge_etcd(status: u16, body: &str) -> Check {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let health = json
        .as_ref()
        .and_then(|v| v.get("health"))
        .and_then(Value::as_str);
    match (status, health) {
        (200, Some("true")) => Check::Ready,
        (_, Some(h)) => {
            let reason = json
                .as_ref()
                .and_then(|v| v.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let reason = if reason.is_empty() {
                NO_REASON.to_string()
            } else {
                reason.to_string()
            };
            Check::not_ready(format!(
                "etcd unhealthy (HTTP {status}, health={h:?}): {reason}"
            ))
        }
        _ => Check::not_ready(format!(
            "HTTP {status} {} (not etcd's health answer)",
            one_line(body, 120)
        )),
    }
}

/// NATS is healthy: `GET {monitor_url}/healthz` answers `{"status":"ok"}`
/// and `GET {monitor_url}/varz` answers with the server's details (the
/// check the port plan names).
pub fn nats_monitor(monitor_url: &str) -> All {
    all(vec![
        http(join(monitor_url, "/healthz"))
            .label("NATS healthz")
            .judge(Arc::new(judge_nats_healthz))
            .boxed(),
        http(join(monitor_url, "/varz"))
            .label("NATS varz")
            .judge(Arc::new(judge_nats_varz))
            .boxed(),
    ])
}

fn judge_nats_healthz(status: u16, body: &str) -> Check {
    let json: Option<Value> = serde_json::from_str(body).ok();
    match json
        .as_ref()
        .and_then(|v| v.get("status"))
        .and_then(Value::as_str)
    {
        Some("ok") if status == 200 => Check::Ready,
        Some(s) => {
            let error = json
                .as_ref()
                .and_then(|v| v.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("");
            Check::not_ready(
                format!("NATS unhealthy (HTTP {status}, status={s:?}) {error}")
                    .trim_end()
                    .to_string(),
            )
        }
        None => Check::not_ready(format!(
            "HTTP {status} {} (not NATS's healthz answer)",
            one_line(body, 120)
        )),
    }
}

fn judge_nats_varz(status: u16, body: &str) -> Check {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let id = json
        .as_ref()
        .and_then(|v| v.get("server_id"))
        .and_then(Value::as_str);
    match id {
        Some(_) if status == 200 => Check::Ready,
        _ => Check::not_ready(format!(
            "HTTP {status} {} (not NATS's varz answer)",
            one_line(body, 120)
        )),
    }
}

/// An OpenAI-compatible server lists every one of `models`:
/// `GET {base_url}/v1/models` has each id in `data[].id`. While some are
/// missing, the reason names the missing and the listed ones.
pub fn openai_models<I, S>(base_url: &str, models: I) -> HttpProbe
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let wanted: Vec<String> = models.into_iter().map(Into::into).collect();
    http(join(base_url, "/v1/models"))
        .label(format!("models {wanted:?} listed"))
        .judge(Arc::new(move |status, body| {
            judge_models(&wanted, status, body)
        }))
}

fn judge_models(wanted: &[String], status: u16, body: &str) -> Check {
    if status != 200 {
        return Check::not_ready(format!("HTTP {status} {}", one_line(body, 120)));
    }
    let json: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return Check::not_ready(format!("/v1/models body is not JSON ({e})")),
    };
    let Some(data) = json.get("data").and_then(Value::as_array) else {
        return Check::not_ready(format!(
            "/v1/models has no `data` list: {}",
            one_line(body, 120)
        ));
    };
    let listed: Vec<&str> = data.iter().filter_map(|m| m.get("id")?.as_str()).collect();
    let missing: Vec<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|w| !listed.contains(w))
        .collect();
    if missing.is_empty() {
        Check::Ready
    } else {
        Check::not_ready(format!("models missing: {missing:?}; listed: {listed:?}"))
    }
}

/// A model is *routable*, not only listed: `POST {base_url}/v1/completions`
/// of a one-token completion for `model` answers 200. Listing a model does
/// not mean its first completion is served (Dynamo's frontend may answer 404
/// "model not found" for a while after `/v1/models` lists it): 404, 503 and
/// a "model not found" answer are retried; any other status ends the wait
/// at once with the body, which says what is wrong.
pub fn openai_completion(base_url: &str, model: &str) -> HttpProbe {
    let body = json!({"model": model, "prompt": "ping", "max_tokens": 1}).to_string();
    http(join(base_url, "/v1/completions"))
        .method("POST")
        .header("content-type", "application/json")
        .body(body)
        .label(format!("a one-token completion of model {model:?}"))
        .judge(Arc::new(judge_completion))
}

fn judge_completion(status: u16, body: &str) -> Check {
    let not_found = body.to_lowercase().contains("model not found");
    match status {
        200 => Check::Ready,
        404 | 503 => Check::not_ready(format!("HTTP {status} {}", one_line(body, 120))),
        _ if not_found => Check::not_ready(format!("HTTP {status} {}", one_line(body, 120))),
        _ => Check::fatal(format!("HTTP {status}: {}", one_line(body, 400))),
    }
}

/// A Dynamo worker is ready: `GET {system_url}/health` on its system port
/// (`DYN_SYSTEM_PORT`) answers 200 with `"status":"ready"` (what Dynamo's
/// own tests wait for, with `DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS` naming
/// its endpoints). Anything else is retried, with the answer as the reason.
pub fn dynamo_worker(system_url: &str) -> HttpProbe {
    http(join(system_url, "/health"))
        .label(format!("Dynamo worker ready ({system_url}/health)"))
        .judge(Arc::new(judge_worker))
}

fn judge_worker(status: u16, body: &str) -> Check {
    let said = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("status")?.as_str().map(str::to_string));
    if status == 200 && said.as_deref() == Some("ready") {
        Check::Ready
    } else {
        Check::not_ready(format!(
            "worker not ready: HTTP {status} {}",
            one_line(body, 120)
        ))
    }
}

/// Probe: a Dynamo frontend's `/health` says `"status":"healthy"`, and
/// optionally lists an endpoint or a number of workers.
#[derive(Clone)]
pub struct FrontendProbe {
    wanted: FrontendWants,
    /// Built once, so that its connection cache serves every attempt.
    probe: HttpProbe,
}

/// What a frontend's `/health` must show beyond `"status":"healthy"`.
#[derive(Clone, Debug, Default)]
struct FrontendWants {
    endpoint: Option<String>,
    /// How many `instances` serving a `generate` endpoint (lowest, highest).
    workers: Option<(usize, usize)>,
    /// Count only the instances of this namespace (a frontend's `/health`
    /// lists every namespace's).
    namespace: Option<String>,
}

/// A Dynamo frontend is healthy: `GET {base_url}/health` answers 200 with
/// `"status":"healthy"`. Add [`FrontendProbe::endpoint`] to also require
/// an endpoint among `endpoints`, [`FrontendProbe::workers`] to require a
/// number of workers.
pub fn dynamo_frontend(base_url: &str) -> FrontendProbe {
    let wanted = FrontendWants::default();
    FrontendProbe {
        probe: frontend_health(base_url, wanted.clone()),
        wanted,
    }
}

impl FrontendProbe {
    /// Also require `endpoint` (e.g. `dyn://ns.backend.generate`) in `endpoints`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.wanted.endpoint = Some(endpoint.into());
        self.rejudge()
    }

    /// Also require exactly `n` worker instances serving a `generate`
    /// endpoint in `instances`: all workers registered, or a dead one gone.
    pub fn workers(mut self, n: usize) -> Self {
        self.wanted.workers = Some((n, n));
        self.rejudge()
    }

    /// Count only workers of Dynamo namespace `namespace` in
    /// [`workers`](Self::workers) and [`min_workers`](Self::min_workers):
    /// a frontend's `/health` lists the instances of every namespace on
    /// its etcd.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.wanted.namespace = Some(namespace.into());
        self.rejudge()
    }

    /// Also require at least `n` worker instances serving `generate`.
    pub fn min_workers(mut self, n: usize) -> Self {
        self.wanted.workers = Some((n, usize::MAX));
        self.rejudge()
    }

    fn rejudge(mut self) -> Self {
        self.probe = self.probe.judge(frontend_judge(self.wanted.clone()));
        self
    }
}

fn frontend_health(base_url: &str, wanted: FrontendWants) -> HttpProbe {
    http(join(base_url, "/health"))
        .label("Dynamo frontend health")
        .judge(frontend_judge(wanted))
}

fn frontend_judge(wanted: FrontendWants) -> Judge {
    Arc::new(move |status, body| judge_frontend(&wanted, status, body))
}

impl std::fmt::Debug for FrontendProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Probe for FrontendProbe {
    fn describe(&self) -> String {
        let mut text = self.probe.describe();
        if let Some(e) = &self.wanted.endpoint {
            text.push_str(&format!(" with endpoint {e}"));
        }
        if let Some(range) = self.wanted.workers {
            text.push_str(&format!(" with {} worker(s)", workers_wanted(range)));
        }
        if let Some(ns) = &self.wanted.namespace {
            text.push_str(&format!(" in namespace {ns}"));
        }
        text
    }

    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        self.probe.check(budget)
    }
}

fn judge_frontend(wanted: &FrontendWants, status: u16, body: &str) -> Check {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if status != 200 || json["status"].as_str() != Some("healthy") {
        return Check::not_ready(format!(
            "frontend not healthy: HTTP {status} {}",
            one_line(body, 120)
        ));
    }
    if let Some(endpoint) = &wanted.endpoint {
        let listed: Vec<&str> = json["endpoints"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !listed.contains(&endpoint.as_str()) {
            return Check::not_ready(format!("endpoint {endpoint:?} not among {listed:?}"));
        }
    }
    if let Some((low, high)) = wanted.workers {
        let namespace = wanted.namespace.as_deref();
        let workers = generate_instances(&json, namespace);
        if workers < low || workers > high {
            let scope = match namespace {
                Some(ns) => format!(
                    " in namespace {ns} ({} of other namespaces not counted)",
                    generate_instances(&json, None) - workers
                ),
                None => String::new(),
            };
            return Check::not_ready(format!(
                "{workers} worker(s) serving `generate`{scope}, waiting for {}",
                workers_wanted((low, high))
            ));
        }
    }
    Check::Ready
}

fn workers_wanted((low, high): (usize, usize)) -> String {
    match high {
        usize::MAX => format!("at least {low}"),
        _ => low.to_string(),
    }
}

/// How many `instances` of a frontend's `/health` serve `generate` (in
/// `namespace`, if given).
fn generate_instances(health: &Value, namespace: Option<&str>) -> usize {
    let counted =
        |i: &&Value| i["endpoint"] == "generate" && namespace.is_none_or(|ns| i["namespace"] == ns);
    health["instances"]
        .as_array()
        .map(|list| list.iter().filter(counted).count())
        .unwrap_or(0)
}

fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_is_ready_only_when_it_says_ready() {
        assert!(matches!(
            judge_worker(200, r#"{"status":"ready"}"#),
            Check::Ready
        ));
        for (status, body) in [
            (200, r#"{"status":"notready"}"#),
            (503, r#"{"status":"ready"}"#),
            (200, "ok"),
        ] {
            let check = judge_worker(status, body);
            assert!(
                reason(check).starts_with("worker not ready: HTTP"),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn a_completion_is_ready_on_200_retried_on_404_503_and_model_not_found() {
        assert!(matches!(judge_completion(200, "{}"), Check::Ready));
        for (status, body) in [
            (404, r#"{"error":"no such route"}"#),
            (503, "loading"),
            (400, r#"{"error":{"message":"Model not found: tiny"}}"#),
        ] {
            let check = judge_completion(status, body);
            assert!(
                matches!(check, Check::NotReady { .. }),
                "{status}: {}",
                reason(check)
            );
        }
        let fatal = judge_completion(400, r#"{"error":"max_tokens must be positive"}"#);
        assert!(matches!(fatal, Check::Fatal { .. }));
        assert!(reason(fatal).contains("HTTP 400: {\"error\":\"max_tokens must be positive\"}"));
    }

    fn reason(c: Check) -> String {
        match c {
            Check::NotReady { reason, .. } | Check::Fatal { reason } => reason,
            Check::Ready => "ready".into(),
        }
    }

    #[test]
    fn etcd_3_4_and_3_5_bodies() {
        assert!(judge_etcd(200, r#"{"health":"true"}"#).is_ready()); // 3.4
        assert!(judge_etcd(200, r#"{"health":"true","reason":""}"#).is_ready()); // 3.5
        let r = reason(judge_etcd(
            503,
            r#"{"health":"false","reason":"RAFT NO LEADER"}"#,
        ));
        assert!(r.contains("RAFT NO LEADER") && r.contains("503"), "{r}");
        let r = reason(judge_etcd(503, r#"{"health":"false"}"#));
        assert!(r.contains("no reason given"), "{r}");
        assert!(reason(judge_etcd(200, "hello")).contains("not etcd's health answer"));
    }

    #[test]
    fn etcd_3_4_status_without_a_leader() {
        // What etcd 3.4.23 answers with two of three members down.
        let lost = r#"{"header":{"member_id":"16581202208830208994","raft_term":"2"},"version":"3.4.23","raftTerm":"2","errors":["etcdserver: no leader"]}"#;
        assert_eq!(
            reason(judge_etcd_status(200, lost)),
            "etcd's status says: etcdserver: no leader"
        );
        let fine =
            r#"{"header":{"member_id":"3632325562372070109"},"leader":"4046445551680858403"}"#;
        assert!(judge_etcd_status(200, fine).is_ready());
        assert!(reason(judge_etcd_status(200, r#"{"leader":"0"}"#)).contains("no leader"));
    }

    #[test]
    fn nats_bodies() {
        assert!(judge_nats_healthz(200, r#"{"status":"ok"}"#).is_ready());
        let r = reason(judge_nats_healthz(
            503,
            r#"{"status":"unavailable","error":"JetStream not current"}"#,
        ));
        assert!(r.contains("JetStream not current"), "{r}");
        let varz = r#"{"server_id":"NABC","server_name":"n1","version":"2.9.10","port":4222,"http_port":8222}"#;
        assert!(judge_nats_varz(200, varz).is_ready());
        assert!(!judge_nats_varz(200, "{}").is_ready());
    }

    #[test]
    fn models_name_missing_and_listed() {
        let want = vec!["a".to_string(), "b".to_string()];
        let body =
            r#"{"object":"list","data":[{"id":"a","object":"model"},{"id":"c","object":"model"}]}"#;
        let r = reason(judge_models(&want, 200, body));
        assert_eq!(r, r#"models missing: ["b"]; listed: ["a", "c"]"#);
        let body = r#"{"object":"list","data":[{"id":"a"},{"id":"b"}]}"#;
        assert!(judge_models(&want, 200, body).is_ready());
        assert!(reason(judge_models(&want, 200, r#"{"object":"list"}"#)).contains("no `data` list"));
    }

    #[test]
    fn frontend_health_and_endpoint() {
        let healthy =
            r#"{"status":"healthy","endpoints":["dyn://ns.backend.generate"],"instances":[]}"#;
        let wants = |endpoint: Option<&str>| FrontendWants {
            endpoint: endpoint.map(str::to_string),
            ..FrontendWants::default()
        };
        assert!(judge_frontend(&wants(None), 200, healthy).is_ready());
        assert!(judge_frontend(&wants(Some("dyn://ns.backend.generate")), 200, healthy).is_ready());
        let r = reason(judge_frontend(&wants(Some("dyn://other")), 200, healthy));
        assert!(
            r.contains("dyn://other") && r.contains("dyn://ns.backend.generate"),
            "{r}"
        );
        assert!(!judge_frontend(&wants(None), 503, r#"{"status":"unhealthy"}"#).is_ready());
    }

    #[test]
    fn frontend_workers_are_counted_by_their_generate_instances() {
        let health = r#"{"status":"healthy","instances":[
            {"endpoint":"generate","instance_id":1,"namespace":"a"},
            {"endpoint":"worker_kv_query_source_1","instance_id":1,"namespace":"a"},
            {"endpoint":"generate","instance_id":2,"namespace":"a"},
            {"endpoint":"generate","instance_id":3,"namespace":"b"}]}"#;
        let wants = |n| FrontendWants {
            workers: Some((n, n)),
            namespace: Some("a".into()),
            ..FrontendWants::default()
        };
        assert!(judge_frontend(&wants(2), 200, health).is_ready());
        let r = reason(judge_frontend(&wants(1), 200, health));
        assert_eq!(
            r,
            "2 worker(s) serving `generate` in namespace a (1 of other namespaces not counted), \
             waiting for 1"
        );
        let r = reason(judge_frontend(&wants(1), 200, r#"{"status":"healthy"}"#));
        assert_eq!(
            r,
            "0 worker(s) serving `generate` in namespace a (0 of other namespaces not counted), \
             waiting for 1"
        );
        let at_least_4 = FrontendWants {
            workers: Some((4, usize::MAX)),
            ..FrontendWants::default()
        };
        let r = reason(judge_frontend(&at_least_4, 200, health));
        assert_eq!(r, "3 worker(s) serving `generate`, waiting for at least 4");
    }
}
