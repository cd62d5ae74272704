//! `http(url)`: ready when an HTTP request gets the expected answer.
//!
//! Every attempt is bounded: redirects limited, the body read up to a cap,
//! all within the attempt's budget. Until the server is found listening,
//! an attempt is a plain TCP connect (cheap when refused). HTTPS goes
//! through rustls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::target::addresses;
use super::tcp::connect_any;
use super::{Check, CheckFuture, Probe};
use crate::sys::sync::lock;

/// Default cap on the response body read by a probe (64 KiB).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;
/// Default limit on redirects followed by a probe.
pub const DEFAULT_MAX_REDIRECTS: usize = 5;
/// How much of a body goes into a one-line reason.
const REASON_BODY_CHARS: usize = 120;
/// How much of a body is kept for the error report.
const REPORT_BODY_CHARS: usize = 2000;

type JsonPredicate = Arc<dyn Fn(&Value) -> bool + Send + Sync>;
/// Decides readiness from status and body; used by the service probes.
pub(crate) type Judge = Arc<dyn Fn(u16, &str) -> Check + Send + Sync>;

/// Probe: an HTTP request answered as expected (2xx by default).
///
/// Built by [`http`]; refine it with the builder methods.
#[derive(Clone)]
pub struct HttpProbe {
    url: String,
    method: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    expected_status: Option<u16>,
    body_contains: Vec<String>,
    json: Vec<JsonPredicate>,
    judge: Option<Judge>,
    max_body: usize,
    max_redirects: usize,
    label: Option<String>,
    /// Extra trusted roots (PEM), e.g. a test's self-signed certificate.
    roots: Vec<Vec<u8>>,
    /// Clients per address and the address that answers, shared by clones.
    clients: Arc<Mutex<ClientState>>,
}

/// A probe that GETs `url` and is ready on a 2xx answer.
///
/// Loopback names (`localhost`) are probed on 127.0.0.1 and ::1 explicitly.
pub fn http(url: impl Into<String>) -> HttpProbe {
    HttpProbe {
        url: url.into(),
        method: "GET".into(),
        headers: Vec::new(),
        body: None,
        expected_status: None,
        body_contains: Vec::new(),
        json: Vec::new(),
        judge: None,
        max_body: DEFAULT_MAX_BODY,
        max_redirects: DEFAULT_MAX_REDIRECTS,
        label: None,
        roots: Vec::new(),
        clients: Arc::default(),
    }
}

impl HttpProbe {
    /// Uses another method (`"POST"`, `"HEAD"`, ...).
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into().to_ascii_uppercase();
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends a request body.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Ready only on this status (instead of any 2xx).
    pub fn expect_status(mut self, status: u16) -> Self {
        self.expected_status = Some(status);
        self
    }

    /// Ready only if the body contains `text`.
    pub fn expect_body_contains(mut self, text: impl Into<String>) -> Self {
        self.body_contains.push(text.into());
        self
    }

    /// Ready only if the body is JSON and `predicate` holds for it.
    pub fn expect_json(
        mut self,
        predicate: impl Fn(&Value) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.json.push(Arc::new(predicate));
        self
    }

    /// Caps the body read per attempt (default [`DEFAULT_MAX_BODY`]).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Limits redirects followed (default [`DEFAULT_MAX_REDIRECTS`]).
    pub fn max_redirects(mut self, n: usize) -> Self {
        self.max_redirects = n;
        self
    }

    /// Also trusts this root certificate (PEM) for HTTPS, e.g. the
    /// self-signed certificate of a server under test. The system's web
    /// roots stay trusted.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots.push(pem.into());
        self
    }

    /// Names the probe in logs and errors.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub(crate) fn judge(mut self, judge: Judge) -> Self {
        self.judge = Some(judge);
        self
    }

    async fn attempt(&self, budget: Duration) -> Check {
        let started = Instant::now();
        // A mistake in the probe itself will not go away by waiting.
        let request = match self.prepare() {
            Ok(r) => r,
            Err(reason) => return Check::fatal(reason),
        };
        let (Some(host), Some(port)) =
            (request.url.host_str(), request.url.port_or_known_default())
        else {
            return Check::fatal(format!("URL {:?} has no host", self.url));
        };
        let addr = match self.known_addr() {
            Some(addr) => addr,
            None => match find_listener(host, port, budget).await {
                Ok(addr) => addr,
                Err(reason) => return Check::not_ready(reason),
            },
        };
        let client = match self.client_for(host, addr) {
            Ok(c) => c,
            Err(e) => {
                return Check::fatal(format!("cannot build an HTTP client: {}", error_chain(&e)))
            }
        };
        let left = budget.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, self.request(&client, request)).await {
            Ok(Ok((status, body))) => self.evaluate(status, &body),
            Ok(Err(reason)) => Check::not_ready(reason),
            Err(_) => Check::not_ready(format!("attempt timed out after {budget:?}")),
        }
    }

    /// Checks what the builder was given: URL, method and headers.
    fn prepare(&self) -> Result<Prepared, String> {
        let url = match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            Ok(u) => {
                return Err(format!(
                    "unsupported URL scheme {:?} (use http or https)",
                    u.scheme()
                ))
            }
            Err(e) => return Err(format!("bad URL {:?}: {e}", self.url)),
        };
        let method = reqwest::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| format!("bad HTTP method {:?}", self.method))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("bad header name {name:?}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("bad value {value:?} for header {name:?}"))?;
            headers.append(name, value);
        }
        Ok(Prepared {
            url,
            method,
            headers,
        })
    }

    /// Sends the request and reads the body up to the cap.
    async fn request(
        &self,
        client: &reqwest::Client,
        prepared: Prepared,
    ) -> Result<(u16, Body), String> {
        let mut request = client
            .request(prepared.method, prepared.url)
            .headers(prepared.headers);
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        let mut response = request.send().await.map_err(|e| {
            if e.is_connect() {
                // The server went away: find it again with cheap connects.
                self.forget_addr();
            }
            self.describe_error(&e)
        })?;
        let status = response.status().as_u16();
        let mut body = Body::default();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.describe_error(&e))?
        {
            if body.bytes.len() + chunk.len() > self.max_body {
                let room = self.max_body - body.bytes.len();
                body.bytes.extend_from_slice(&chunk[..room]);
                body.truncated = true;
                break;
            }
            body.bytes.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }

    fn evaluate(&self, status: u16, body: &Body) -> Check {
        let text = String::from_utf8_lossy(&body.bytes);
        let not_ready = |why: String| Check::NotReady {
            reason: format!(
                "{why}: HTTP {status} {}",
                one_line(&text, REASON_BODY_CHARS)
            ),
            body: Some(one_line(&text, REPORT_BODY_CHARS)),
        };
        if body.truncated {
            return not_ready(format!(
                "response body larger than the {} byte cap",
                self.max_body
            ));
        }
        if let Some(judge) = &self.judge {
            return match judge(status, &text) {
                Check::NotReady { reason, .. } => Check::NotReady {
                    reason,
                    body: Some(one_line(&text, REPORT_BODY_CHARS)),
                },
                other => other,
            };
        }
        let status_ok = match self.expected_status {
            Some(s) => status == s,
            None => (200..300).contains(&status),
        };
        if !status_ok {
            let want = self
                .expected_status
                .map_or("2xx".to_string(), |s| s.to_string());
            return not_ready(format!("expected status {want}"));
        }
        if let Some(missing) = self
            .body_contains
            .iter()
            .find(|t| !text.contains(t.as_str()))
        {
            return not_ready(format!("body lacks {missing:?}"));
        }
        if !self.json.is_empty() {
            match serde_json::from_str::<Value>(&text) {
                Err(e) => return not_ready(format!("body is not JSON ({e})")),
                Ok(v) if !self.json.iter().all(|p| p(&v)) => {
                    return not_ready("JSON check failed".into())
                }
                Ok(_) => {}
            }
        }
        Check::Ready
    }

    /// The address that accepted last time, while it keeps accepting.
    fn known_addr(&self) -> Option<SocketAddr> {
        self.state().known_addr
    }

    fn forget_addr(&self) {
        self.state().known_addr = None;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ClientState> {
        lock(&self.clients)
    }

    /// A client that connects `host` to `addr` (the address that accepted).
    fn client_for(&self, host: &str, addr: SocketAddr) -> Result<reqwest::Client, reqwest::Error> {
        let mut state = self.state();
        state.known_addr = Some(addr);
        if let Some(c) = state.clients.get(&addr) {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(self.max_redirects))
            .no_proxy()
            .resolve(host, addr)
            .pool_max_idle_per_host(0);
        for pem in &self.roots {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem)?);
        }
        let client = builder.build()?;
        state.clients.insert(addr, client.clone());
        Ok(client)
    }

    fn describe_error(&self, e: &reqwest::Error) -> String {
        if e.is_redirect() {
            return format!("too many redirects (limit {})", self.max_redirects);
        }
        error_chain(e)
    }
}

impl Probe for HttpProbe {
    fn describe(&self) -> String {
        match &self.label {
            Some(label) => format!("{label} ({} {})", self.method, self.url),
            None => format!("HTTP {} {}", self.method, self.url),
        }
    }

    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        Box::pin(self.attempt(budget))
    }
}

impl std::fmt::Debug for HttpProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The causes of `e`, joined with ": " (reqwest's own text repeats the URL).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&s.to_string());
        source = s.source();
    }
    if text.is_empty() {
        text = e.to_string();
    }
    text
}

/// What a probe learns across attempts.
#[derive(Default)]
struct ClientState {
    /// One client per address, built on first use.
    clients: HashMap<SocketAddr, reqwest::Client>,
    /// The address that accepted last; `None` until found or after it refused.
    known_addr: Option<SocketAddr>,
}

/// Finds the address that accepts TCP connections for `host:port`.
///
/// While a server is not up yet, an attempt is only a refused connect: a
/// few syscalls, not an HTTP client round. That keeps fast polling cheap.
async fn find_listener(host: &str, port: u16, budget: Duration) -> Result<SocketAddr, String> {
    let targets = addresses(host, port).await?;
    let stream = connect_any(&targets, budget).await?;
    stream.peer_addr().map_err(|e| format!("connect: {e}"))
}

/// A request checked by [`HttpProbe::prepare`].
struct Prepared {
    url: reqwest::Url,
    method: reqwest::Method,
    headers: HeaderMap,
}

#[derive(Default)]
struct Body {
    bytes: Vec<u8>,
    truncated: bool,
}

/// The text on one line, cut to `max` characters with an ellipsis.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(probe: &HttpProbe, status: u16, body: &str) -> Check {
        probe.evaluate(
            status,
            &Body {
                bytes: body.as_bytes().to_vec(),
                truncated: false,
            },
        )
    }

    #[test]
    fn default_is_any_2xx() {
        let p = http("http://127.0.0.1:1/");
        assert!(eval(&p, 204, "").is_ready());
        match eval(&p, 503, "{\"health\":\"false\"}") {
            Check::NotReady { reason, body } => {
                assert_eq!(
                    reason,
                    "expected status 2xx: HTTP 503 {\"health\":\"false\"}"
                );
                assert_eq!(body.as_deref(), Some("{\"health\":\"false\"}"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_body_and_json_expectations() {
        let p = http("http://x/")
            .expect_status(418)
            .expect_body_contains("tea");
        assert!(eval(&p, 418, "teapot").is_ready());
        assert!(!eval(&p, 200, "teapot").is_ready());
        assert!(!eval(&p, 418, "coffee").is_ready());
        let p = http("http://x/").expect_json(|v| v["ok"] == true);
        assert!(eval(&p, 200, r#"{"ok":true}"#).is_ready());
        assert!(!eval(&p, 200, r#"{"ok":false}"#).is_ready());
        let Check::NotReady { reason, .. } = eval(&p, 200, "<html>") else {
            panic!()
        };
        assert!(reason.starts_with("body is not JSON"), "{reason}");
    }

    #[test]
    fn a_truncated_body_is_never_ready() {
        let p = http("http://x/").max_body(4);
        let check = p.evaluate(
            200,
            &Body {
                bytes: b"abcd".to_vec(),
                truncated: true,
            },
        );
        let Check::NotReady { reason, .. } = check else {
            panic!()
        };
        assert!(reason.contains("larger than the 4 byte cap"), "{reason}");
    }

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\n  b", 10), "a b");
        assert_eq!(one_line("abcdef", 3), "abc...");
    }

    #[tokio::test]
    async fn bad_urls_are_fatal() {
        for (url, why) in [("ftp://x/", "scheme"), ("not a url", "bad URL")] {
            let Check::Fatal { reason } = http(url).check(Duration::from_secs(1)).await else {
                panic!()
            };
            assert!(reason.contains(why), "{reason}");
        }
    }

    #[tokio::test]
    async fn bad_methods_and_headers_are_fatal() {
        // Port 1: nothing listens; a check that got that far would say so.
        let p = || http("http://127.0.0.1:1/");
        let cases = [
            (p().method("GE T"), "bad HTTP method \"GE T\""),
            (p().header("x bad", "1"), "bad header name \"x bad\""),
            (
                p().header("x-ok", "a\nb"),
                "bad value \"a\\nb\" for header \"x-ok\"",
            ),
        ];
        for (probe, want) in cases {
            let check = probe.check(Duration::from_secs(1)).await;
            assert_eq!(check, Check::fatal(want));
        }
    }
}
