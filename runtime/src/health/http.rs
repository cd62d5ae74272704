//! `http(url)`: ready when an HTTP request gets the expected answer.
//!
//! Every attempt is bounded: redirects limited, the body read up to a cap,
//! all within the attempt's budget. While nothing listens, an attempt is a
//! refused TCP connect and no more (cheap). Requests go through the
//! crate's small HTTP/1.1 client ([`super::http_client`]); HTTPS needs the
//! `https` feature.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::Method;
use serde_json::Value;

use super::http_client::{Client, Error as ClientError, Request, Response, Url};
use super::{Check, CheckFuture, Probe};

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
/// Built by [`http`]; refine it with the builder methods. `https://` URLs
/// need the `https` feature of dynamo-test (off by default: the probes
/// mostly target loopback, and TLS is most of a client's build time);
/// without it such a probe fails at once and says so.
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
    /// Holds the extra trusted roots (PEM), e.g. a test's self-signed
    /// certificate, and the TLS setup built from them.
    client: Client,
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
        client: Client::new(),
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
    /// self-signed certificate of a server under test. The web's public
    /// roots (webpki-roots) stay trusted. Needs the `https` feature to
    /// matter; a PEM text without a certificate makes HTTPS attempts fatal.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.client.add_root_pem(pem.into());
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
        // A mistake in the probe itself will not go away by waiting.
        let request = match self.prepare() {
            Ok(r) => r,
            Err(reason) => return Check::fatal(reason),
        };
        match self.fetch(request, budget).await {
            Ok(response) => self.evaluate(
                response.status.as_u16(),
                &Body {
                    bytes: response.body,
                    truncated: response.truncated,
                },
            ),
            Err(check) => check,
        }
    }

    /// Checks what the builder was given: URL, method and headers.
    fn prepare(&self) -> Result<Request, String> {
        let url = Url::parse(&self.url)?;
        let method = Method::from_bytes(self.method.as_bytes())
            .map_err(|_| format!("bad HTTP method {:?}", self.method))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("bad header name {name:?}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("bad value {value:?} for header {name:?}"))?;
            headers.append(name, value);
        }
        let mut request = Request::new(method, url);
        request.headers = headers;
        if let Some(body) = &self.body {
            request.body = Bytes::from(body.clone());
        }
        Ok(request)
    }

    /// Sends the request, following redirects up to the limit, all within
    /// `budget`; the body is read up to the cap.
    async fn fetch(&self, mut request: Request, budget: Duration) -> Result<Response, Check> {
        let deadline = Instant::now() + budget;
        let mut followed = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let response = self
                .client
                .send(&request, left, self.max_body)
                .await
                .map_err(|e| match e {
                    ClientError::Timeout(_) => {
                        Check::not_ready(format!("attempt timed out after {budget:?}"))
                    }
                    ClientError::Fatal(reason) => Check::fatal(reason),
                    other => Check::not_ready(other.to_string()),
                })?;
            let Some(next) = request.redirected(&response) else {
                return Ok(response);
            };
            if followed == self.max_redirects {
                return Err(Check::not_ready(format!(
                    "too many redirects (limit {})",
                    self.max_redirects
                )));
            }
            followed += 1;
            request = next;
        }
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

    /// Without the `https` feature an HTTPS probe cannot work: the first
    /// attempt ends the wait and says which feature to enable.
    #[cfg(not(feature = "https"))]
    #[tokio::test]
    async fn https_without_the_feature_is_fatal_and_names_the_feature() {
        let err = http("https://localhost:1/health")
            .wait(Duration::from_secs(10))
            .await
            .unwrap_err();
        let reason = err.fatal.as_deref().unwrap_or_default();
        assert!(
            reason.contains("enable the `https` feature of dynamo-test"),
            "{err}"
        );
        assert!(reason.contains(r#"features = ["https"]"#), "{err}");
        assert_eq!(err.attempts, 1, "{err}");
        assert!(
            err.elapsed < Duration::from_secs(8),
            "not the 10 s limit: {err}"
        );
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
