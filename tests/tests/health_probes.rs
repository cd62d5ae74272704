//! Probes against real servers on reserved ports: servers that become
//! ready late, and hostile ones. Every wait must end within its timeout
//! plus 200 ms with an error that names the cause.

use std::time::{Duration, Instant};

use dynamo_test::health::{self, Probe, WaitError};
use dynamo_test::{dynamo_test, Port, TestContext};
use dynamo_test_suite::servers::{response, serve, serve_closing, Behaviour};

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
    let url = port.url("/health");
    serve(port.into_tokio_listener().unwrap(), move |_| {
        behaviour.clone()
    });
    url
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
    assert!(ready.elapsed < Duration::from_millis(400), "{ready:?}");
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

#[dynamo_test]
async fn a_redirect_loop_is_cut_at_the_limit(api: Port) {
    let url = serve_all(
        api,
        Behaviour::Respond(response(302, "Location: /health\r\n", "")),
    );
    let err = expect_failure(health::http(url)).await;
    assert!(
        err.history.contains("too many redirects (limit 5)"),
        "{err}"
    );
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

    // Only where this machine has IPv6 loopback.
    if let Ok(listener) = tokio::net::TcpListener::bind(("::1", v6.get())).await {
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
}

#[dynamo_test]
async fn all_and_any_share_one_deadline(up: Port, down: Port) {
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
        .wait_for_within(health::http(&closed), Duration::from_millis(100))
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
