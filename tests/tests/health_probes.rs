//! Probes against real servers on reserved ports: servers that become
//! ready late, and hostile ones. Every wait must end within its timeout
//! plus 200 ms with an error that names the cause.

use std::time::{Duration, Instant};

use dynamo_test::health::{self, Probe, WaitError};
use dynamo_test::{dynamo_test, Port, TestContext};
use dynamo_test_suite::servers::{
    response, serve, serve_closing, serve_recording, serve_requests, Behaviour, Requests,
};

const LIMIT: Duration = Duration::from_millis(700);
const SLACK: Duration = Duration::from_millis(200);

/// Waits for `probe` with [`LIMIT`], expecting failure within the slack.
async fn expect_failure(probe: impl Probe) -> WaitError {
    let started = Instant::now();
    let err = probe
        .wait(LIMIT)
        .await
        .expect_err("hostile server must not count as ready");
    let took = started.elapsed();
    assert!(
        took <= LIMIT + SLACK,
        "wait took {took:?}, limit {LIMIT:?}: {err}"
    );
    err
}

fn serve_all(port: Port, behaviour: Behaviour) -> String {
    serve_recorded(port, behaviour).0
}

/// Like [`serve_all`], also returning what the server received.
fn serve_recorded(port: Port, behaviour: Behaviour) -> (String, Requests) {
    let url = port.url("/health");
    let requests = serve_recording(port.into_tokio_listener().unwrap(), behaviour);
    (url, requests)
}

#[dynamo_test]
async fn a_server_that_starts_late_is_seen_soon_after(api: Port) {
    let url = api.url("/health");
    let number = api.get();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let listener = api.into_tokio_listener().unwrap();
        serve(listener, |_| Behaviour::Respond(response(200, "", "{}")));
    });
    let ready = health::http(&url)
        .wait(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(ready.elapsed >= Duration::from_millis(150), "{ready:?}");
    // Well before the 5 s limit: the wait noticed the server, it did not time out.
    assert!(ready.elapsed < Duration::from_secs(4), "{ready:?}");
    assert!(ready.attempts > 1);
    assert!(ready.probe.contains(&number.to_string()));
}

#[dynamo_test]
async fn a_503_phase_then_200_is_ready(api: Port) {
    let url = api.url("/health");
    serve(api.into_tokio_listener().unwrap(), |n| {
        if n < 3 {
            Behaviour::Respond(response(503, "", r#"{"health":"false"}"#))
        } else {
            Behaviour::Respond(response(200, "", r#"{"health":"true"}"#))
        }
    });
    let ready = health::http(url)
        .wait(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ready.attempts, 4);
}

#[dynamo_test]
async fn nothing_listening_is_connection_refused(api: Port) {
    let err = expect_failure(health::http(api.url("/health"))).await;
    assert!(err.history.starts_with("connection refused x"), "{err}");
    assert!(err.fatal.is_none());
}

#[dynamo_test]
async fn accepts_and_never_answers(api: Port) {
    let err = expect_failure(health::http(serve_all(api, Behaviour::Silent))).await;
    assert!(err.history.contains("attempt timed out after"), "{err}");
}

/// Attempts are cut at the default 1 s, and the last one at the time left.
#[dynamo_test]
async fn each_attempt_times_out_after_1s_or_the_time_left(api: Port) {
    let limit = Duration::from_millis(2500);
    let url = serve_all(api, Behaviour::Silent);
    let started = Instant::now();
    let err = health::http(url).wait(limit).await.unwrap_err();
    let took = started.elapsed();
    assert!(took <= limit + SLACK, "wait took {took:?}: {err}");
    // Two full attempts (about 2 s) leave about 0.5 s for the third.
    let runs: Vec<&str> = err.history.split(" -> ").collect();
    let [full, last] = runs[..] else {
        panic!("expected two runs of outcomes: {err}")
    };
    assert_eq!(full, "attempt timed out after 1s x2", "{err}");
    let last = last
        .strip_prefix("attempt timed out after ")
        .and_then(|d| d.strip_suffix("ms"))
        .and_then(|ms| ms.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("last attempt not cut in ms: {err}"));
    assert!(last > 0.0 && last < 1000.0, "{err}");
    assert_eq!(err.attempts, 3, "{err}");
}

#[dynamo_test]
async fn answers_503_forever(api: Port) {
    let url = serve_all(
        api,
        Behaviour::Respond(response(503, "", r#"{"health":"false"}"#)),
    );
    let err = expect_failure(health::http(url)).await;
    assert!(
        err.history
            .starts_with(r#"expected status 2xx: HTTP 503 {"health":"false"} x"#),
        "{err}"
    );
    assert_eq!(err.last_body.as_deref(), Some(r#"{"health":"false"}"#));
    assert!(
        err.to_string()
            .contains("last body: {\"health\":\"false\"}"),
        "{err}"
    );
}

#[dynamo_test]
async fn a_10_mb_body_is_cut_at_the_cap(api: Port) {
    let url = serve_all(
        api,
        Behaviour::Huge {
            size: 10 * 1024 * 1024,
        },
    );
    let err = expect_failure(health::http(url)).await;
    assert!(
        err.history
            .contains("response body larger than the 65536 byte cap"),
        "{err}"
    );
}

/// A body that never ends (many GB announced, data flowing) is cut by the
/// cap at once, not by the attempt timeout.
#[dynamo_test]
async fn an_endless_body_is_cut_at_the_cap(api: Port) {
    let url = serve_all(api, Behaviour::Huge { size: 1 << 40 });
    let cap = "response body larger than the 65536 byte cap";
    let started = Instant::now();
    let check = health::http(&url).check(Duration::from_secs(30)).await;
    let took = started.elapsed();
    match check {
        dynamo_test::health::Check::NotReady { reason, .. } => {
            assert!(reason.starts_with(cap), "{reason}")
        }
        other => panic!("expected not ready, got {other:?}"),
    }
    // Far below the 30 s budget: the attempt ended on the cap.
    assert!(took < Duration::from_secs(5), "attempt took {took:?}");
    let err = expect_failure(health::http(&url)).await;
    assert!(err.history.starts_with(cap), "{err}");
}

#[dynamo_test]
async fn a_redirect_loop_is_cut_at_the_limit(api: Port) {
    let (url, requests) = serve_recorded(
        api,
        Behaviour::Respond(response(302, "Location: /health\r\n", "")),
    );
    let err = expect_failure(health::http(url)).await;
    assert!(
        err.history.contains("too many redirects (limit 5)"),
        "{err}"
    );
    // The request and 5 redirects followed: 6 requests per attempt (the
    // last attempt may have been cut by the deadline part way).
    let seen = requests.count();
    let attempts = err.attempts as usize;
    assert!(
        seen <= 6 * attempts,
        "{seen} requests in {attempts} attempts"
    );
    assert!(
        seen >= 6 * (attempts - 1),
        "{seen} requests in {attempts} attempts"
    );
}

#[dynamo_test]
async fn method_headers_and_body_are_sent(api: Port) {
    let (url, requests) = serve_recorded(api, Behaviour::Respond(response(200, "", "{}")));
    health::http(url)
        .method("put")
        .header("X-Probe", "dynamo-test")
        .body(r#"{"ping":1}"#)
        .wait(Duration::from_secs(5))
        .await
        .unwrap();
    let texts = requests.texts();
    let [request] = &texts[..] else {
        panic!("expected one request: {texts:?}")
    };
    assert!(request.starts_with("PUT /health HTTP/1.1\r\n"), "{request}");
    assert!(
        request
            .to_lowercase()
            .contains("\r\nx-probe: dynamo-test\r\n"),
        "{request}"
    );
    assert!(request.ends_with("\r\n\r\n{\"ping\":1}"), "{request}");
}

#[dynamo_test]
async fn a_bad_header_ends_the_wait_at_once(api: Port) {
    let (url, requests) = serve_recorded(api, Behaviour::Respond(response(200, "", "{}")));
    let err = health::http(url)
        .header("X Bad Name", "1")
        .wait(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(
        err.fatal.as_deref(),
        Some(r#"bad header name "X Bad Name""#),
        "{err}"
    );
    assert_eq!(err.attempts, 1, "{err}");
    assert!(err.elapsed < Duration::from_secs(2), "{err}");
    assert_eq!(requests.count(), 0, "nothing should have been sent");
}

#[dynamo_test]
async fn a_slow_drip_of_bytes_is_cut_by_the_attempt_timeout(api: Port) {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
    let url = serve_all(
        api,
        Behaviour::Drip {
            head,
            every: Duration::from_millis(20),
        },
    );
    let err = expect_failure(health::http(url)).await;
    assert!(err.history.contains("attempt timed out after"), "{err}");
}

#[dynamo_test]
async fn a_server_that_closes_at_once(api: Port) {
    let url = api.url("/health");
    serve_closing(api.into_tokio_listener().unwrap());
    let err = expect_failure(health::http(url)).await;
    assert!(
        err.history.contains("closed") || err.history.contains("reset"),
        "{err}"
    );
}

#[dynamo_test]
async fn a_server_that_answers_garbage(api: Port) {
    let url = serve_all(
        api,
        Behaviour::Respond(b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()),
    );
    let err = expect_failure(health::http(url)).await;
    assert!(err.history.to_lowercase().contains("invalid"), "{err}");
}

#[dynamo_test]
async fn etcd_reason_is_reported(api: Port) {
    let body = r#"{"health":"false","reason":"RAFT NO LEADER"}"#;
    let base = api.url("");
    serve(api.into_tokio_listener().unwrap(), move |_| {
        Behaviour::Respond(response(503, "", body))
    });
    let err = expect_failure(health::etcd(&base)).await;
    assert!(
        err.history
            .contains("etcd unhealthy (HTTP 503, health=\"false\"): RAFT NO LEADER"),
        "{err}"
    );
}

#[dynamo_test]
async fn localhost_finds_a_server_on_either_loopback(v4: Port, v6: Port) {
    let v4_url = format!("http://localhost:{v4}/");
    serve(v4.into_tokio_listener().unwrap(), |_| {
        Behaviour::Respond(response(200, "", "{}"))
    });
    health::http(v4_url)
        .wait(Duration::from_secs(2))
        .await
        .unwrap();

    // Machines running this suite have IPv6 loopback: not skipped, so a
    // broken ::1 path cannot pass unnoticed.
    let listener = tokio::net::TcpListener::bind(("::1", v6.get()))
        .await
        .expect("cannot bind [::1]; this test needs IPv6 loopback");
    serve(listener, |_| Behaviour::Respond(response(200, "", "{}")));
    health::http(format!("http://localhost:{v6}/"))
        .wait(Duration::from_secs(2))
        .await
        .unwrap();
    health::tcp(format!("localhost:{v6}"))
        .wait(Duration::from_secs(2))
        .await
        .unwrap();
}

/// Two silent servers: each attempt of `all`/`any` checks both at once
/// within one budget, so the wait ends at its limit, not at twice it.
#[dynamo_test]
async fn all_and_any_share_one_deadline(a: Port, b: Port) {
    let a = serve_all(a, Behaviour::Silent);
    let b = serve_all(b, Behaviour::Silent);
    let both = || vec![health::http(&a).boxed(), health::http(&b).boxed()];
    let err = expect_failure(health::all(both())).await;
    assert!(err.history.contains("attempt timed out after"), "{err}");
    let err = expect_failure(health::any(both())).await;
    assert!(err.history.contains("attempt timed out after"), "{err}");
}

#[dynamo_test]
async fn any_needs_one_up_and_all_names_the_one_down(up: Port, down: Port) {
    let up_url = serve_all(up, Behaviour::Respond(response(200, "", "{}")));
    let down_url = down.url("/health");
    health::any(vec![
        health::http(&down_url).boxed(),
        health::http(&up_url).boxed(),
    ])
    .wait(Duration::from_secs(2))
    .await
    .unwrap();
    let err = expect_failure(health::all(vec![
        health::http(&up_url).boxed(),
        health::http(&down_url).boxed(),
    ]))
    .await;
    assert!(
        err.history
            .contains(&format!("HTTP GET {down_url}: connection refused")),
        "{err}"
    );
}

#[dynamo_test]
async fn context_waits_are_logged_and_fail_with_the_story(api: Port, ctx: &TestContext) {
    let closed = api.url("/health");
    let err = ctx
        .wait_for(health::http(&closed))
        .timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("connection refused"), "{err}");

    let url = serve_all(
        api,
        Behaviour::Respond(response(200, "", r#"{"status":"healthy"}"#)),
    );
    let ready = ctx
        .wait_for(health::http(url).expect_json(|v| v["status"] == "healthy"))
        .await
        .unwrap();
    assert_eq!(ready.attempts, 1);
}

/// `TestContext` waits print a line with their duration. Test output is
/// captured in-process, so run the test above in a child with
/// `--nocapture` and read its stdout.
#[dynamo_test(timeout = "60s")]
async fn context_waits_are_logged_with_their_duration() {
    let stdout = tokio::task::spawn_blocking(|| {
        dynamo_test_suite::run_own_test("context_waits_are_logged_and_fail_with_the_story")
    })
    .await
    .unwrap();
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("[dynamo-test] "))
        .collect();
    let failed = lines
        .iter()
        .find(|l| l.contains(": not ready: timed out waiting for HTTP GET"))
        .unwrap_or_else(|| panic!("no failed-wait line in {stdout}"));
    assert!(failed.contains("(limit 100ms)"), "{failed}");
    let ready = lines
        .iter()
        .find_map(|l| l.split_once(": ready: HTTP GET "))
        .unwrap_or_else(|| panic!("no ready line in {stdout}"))
        .1;
    let took = ready
        .split_once(" in ")
        .and_then(|(_, rest)| rest.strip_suffix(" (1 attempts)"))
        .unwrap_or_else(|| panic!("no duration in {ready:?}"));
    let digits = took.trim_end_matches(|c: char| c.is_alphabetic());
    assert!(
        digits.parse::<f64>().is_ok() && took.ends_with('s'),
        "{took:?}"
    );
}

/// A model listed is not yet a model routed: the completion probe retries
/// "model not found" and 503, and is ready on the first 200. Each attempt
/// is a POST of a one-token completion for the model.
#[dynamo_test]
async fn a_completion_probe_waits_until_the_model_is_routable(api: Port) {
    let base = api.url("");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    serve_requests(api.into_tokio_listener().unwrap(), move |n, request| {
        record.lock().unwrap().push(request.to_string());
        Behaviour::Respond(match n {
            0 | 1 => response(404, "", r#"{"error":{"message":"model not found: tiny"}}"#),
            2 => response(503, "", r#"{"error":"warming up"}"#),
            _ => response(200, "", r#"{"choices":[{"text":"o"}]}"#),
        })
    });
    let ready = health::openai_completion(&base, "tiny")
        .wait(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(ready.attempts, 4);
    let first = seen.lock().unwrap()[0].clone();
    assert!(first.starts_with("POST /v1/completions "), "{first}");
    assert!(first.contains(r#""model":"tiny""#), "{first}");
    assert!(first.contains(r#""max_tokens":1"#), "{first}");
}

#[dynamo_test]
async fn a_completion_probe_gives_up_at_once_on_another_error(api: Port) {
    let base = api.url("");
    serve(api.into_tokio_listener().unwrap(), |_| {
        Behaviour::Respond(response(400, "", r#"{"error":"prompt must not be empty"}"#))
    });
    let err = health::openai_completion(&base, "tiny")
        .wait(Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(err.attempts, 1, "{err}");
    let fatal = err.fatal.clone().unwrap_or_default();
    assert!(fatal.contains("HTTP 400"), "{err}");
    assert!(
        fatal.contains("prompt must not be empty"),
        "the body says why: {err}"
    );
}
