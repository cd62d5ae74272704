//! Connected clients as parameters: `etcd_client::Client` (the runtime's
//! feature `etcd-client`) and `async_nats::Client` (`async-nats`), both
//! turned on by this suite's feature `clients`:
//!
//! ```sh
//! cargo test -p dynamo-test-suite --features clients --test clients
//! ```
//!
//! Against the shared instances, isolated ones restarted mid-test, an etcd
//! cluster missing a member, and (in a child process, the
//! `clients_scenario` binary, with `ETCD_ENDPOINTS` / `NATS_SERVER` set)
//! endpoints that fail setup and a drain at teardown. Every wait is for an
//! event (an answer, a message, a server's `/connz`), bounded generously.

use std::process::Output;
use std::time::{Duration, Instant};

use dynamo_test::{dynamo_test, health, Etcd, Nats, Port, TestContext};
use dynamo_test_suite::servers::{response, serve, serve_closing, Behaviour};
use etcd_client::{GetOptions, KvClientPrefix};
use futures_util::StreamExt;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SCENARIO: &str = env!("CARGO_BIN_EXE_clients_scenario");

/// The bound of every wait for an event below: never reached when things
/// work, long enough for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// The README's etcd example (the last test here checks that the README
/// shows it as it is here).
#[dynamo_test(timeout = "30s")]
async fn etcd_client_puts_and_gets_under_the_tests_prefix(
    mut client: etcd_client::Client, // connected to the test's etcd (here the shared one)
    etcd: Etcd,                      // the same etcd: the test's key prefix, faults
) -> TestResult {
    client.put(etcd.key("greeting"), "hello", None).await?;
    let reply = client.get(etcd.key("greeting"), None).await?;
    assert_eq!(reply.kvs()[0].value_str()?, "hello");
    // Keys relative to the test's prefix: etcd-client's own prefixed view.
    let mut kv = KvClientPrefix::new(client.kv_client(), etcd.key_prefix().into());
    kv.put("worker-1", "ready", None).await?;
    assert_eq!(
        etcd.get(&etcd.key("worker-1")).await?.as_deref(),
        Some("ready")
    );
    let mine = client
        .get(etcd.key_prefix(), Some(GetOptions::new().with_prefix()))
        .await?;
    assert_eq!(mine.count(), 2); // the test's keys only; deleted at teardown
    Ok(())
}

/// The README's NATS example.
#[dynamo_test(timeout = "30s")]
async fn nats_client_publishes_and_subscribes(
    client: async_nats::Client, // connected, named after the test, drained at teardown
    nats: Nats,                 // the same NATS: the test's subject prefix, faults
) -> TestResult {
    let mut jobs = client.subscribe(nats.subject("jobs")).await?;
    client.publish(nats.subject("jobs"), "job-1".into()).await?;
    let job = tokio::time::timeout(Duration::from_secs(10), jobs.next()).await?;
    assert_eq!(job.map(|m| m.payload), Some("job-1".into()));
    Ok(())
}

/// After a restart (same port, same data), a stop and start, or a SIGKILL
/// and start, the client connects again by itself; while etcd is stopped a
/// request fails at once with a connection error. (A request sent before
/// the client saw its connection close fails the same way: those are
/// retried, as a user's code would.)
#[dynamo_test(services(etcd(isolated)), timeout = "90s")]
async fn etcd_client_reconnects_after_a_restart(
    client: etcd_client::Client,
    etcd: Etcd,
) -> TestResult {
    let put = |key: String, value: &'static str| {
        let mut client = client.clone(); // a handle to the same connection
        async move { client.put(key, value, None).await }
    };
    let get = |key: String| {
        let mut client = client.clone();
        async move { client.get(key, None).await }
    };
    put(etcd.key("before"), "1").await?;

    etcd.restart().await?;
    retrying_connection_lost("put", || put(etcd.key("after-restart"), "2")).await?;
    let before = retrying_connection_lost("get", || get(etcd.key("before"))).await?;
    assert_eq!(before.kvs()[0].value_str()?, "1", "same data dir");

    etcd.stop().await?;
    let while_stopped = tokio::time::timeout(PATIENCE, get(etcd.key("before")))
        .await
        .map_err(|_| "a request to a stopped etcd neither failed nor answered")?;
    let err = while_stopped.err().ok_or("a stopped etcd answered")?;
    assert!(is_connection_lost(&err), "{err}");
    etcd.start().await?;
    retrying_connection_lost("put", || put(etcd.key("after-start"), "3")).await?;

    etcd.kill()?;
    etcd.start().await?;
    assert_eq!(
        keys_of_the_test(&client, &etcd).await?,
        3,
        "every write survived"
    );
    Ok(())
}

/// The client knows every member of a cluster; with the first endpoint's
/// member killed (a client that knew only it would fail), a request
/// routed to it (or in flight on its connection) fails, and the next ones
/// go to the members that answer; with the member restarted, writes go on.
#[dynamo_test(services(etcd(cluster = 3)), timeout = "120s")]
async fn etcd_client_uses_every_member_of_a_cluster(
    mut client: etcd_client::Client,
    etcd: Etcd,
) -> TestResult {
    let listed = client.member_list().await?;
    let mut urls: Vec<String> = listed
        .members()
        .iter()
        .flat_map(|m| m.client_urls().to_vec())
        .collect();
    let mut endpoints = etcd.endpoints().to_vec();
    urls.sort();
    endpoints.sort();
    assert_eq!(urls, endpoints, "the client's cluster is the test's");

    // The member of the first endpoint: a client that knew only that one
    // could not write from here on. If it led, wait for another leader.
    let first = 0;
    let leader = etcd.leader().await?;
    etcd.member(first)?.kill();
    if leader == first {
        let deadline = Instant::now() + PATIENCE;
        while !matches!(etcd.leader().await, Ok(new) if new != first) {
            assert!(
                Instant::now() < deadline,
                "no new leader within {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let put = |key: String| {
        let mut client = client.clone(); // a handle to the same connections
        async move { client.put(key, "v", None).await }
    };
    for i in 0..10 {
        retrying_connection_lost("put", || put(etcd.key(&format!("k{i}")))).await?;
    }
    etcd.member(first)?.restart().await?;
    etcd.wait_healthy(PATIENCE).await?;
    retrying_connection_lost("put", || put(etcd.key("after"))).await?;
    assert_eq!(keys_of_the_test(&client, &etcd).await?, 11);
    Ok(())
}

/// The connection carries the test's name (the server's `/connz` says so);
/// a subscription made before a restart gets what is published after the
/// client is back, and what is published while it is disconnected waits in
/// the client and is delivered once the server is started again.
#[dynamo_test(services(nats(isolated)), timeout = "90s")]
async fn nats_client_is_named_and_reconnects_after_a_restart(
    client: async_nats::Client,
    nats: Nats,
    ctx: &TestContext,
) -> TestResult {
    let connz = format!(
        "{}/connz",
        nats.monitor_url().ok_or("an isolated NATS has a monitor")?
    );
    // A connection of the test's name on the server now (after a restart:
    // a new connection, the server's list starts empty).
    let named = || {
        let name = ctx.name().to_string();
        health::http(connz.clone()).expect_json(move |v| {
            v["connections"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["name"] == name.as_str()))
        })
    };
    ctx.wait_for(named()).timeout(PATIENCE).await?;

    let mut jobs = client.subscribe(nats.subject("jobs")).await?;
    client.flush().await?;
    nats.restart().await?;
    ctx.wait_for(named()).timeout(PATIENCE).await?; // the client is back
    client
        .publish(nats.subject("jobs"), "after-restart".into())
        .await?;
    let job = tokio::time::timeout(PATIENCE, jobs.next()).await?;
    assert_eq!(job.map(|m| m.payload), Some("after-restart".into()));

    nats.stop().await?;
    let c = client.clone();
    let disconnected = health::from_fn("the client sees the server gone", move || {
        let state = c.connection_state();
        async move {
            match state {
                async_nats::connection::State::Disconnected => health::Check::Ready,
                other => health::Check::not_ready(format!("client {other}")),
            }
        }
    });
    ctx.wait_for(disconnected).timeout(PATIENCE).await?;
    client
        .publish(nats.subject("jobs"), "while-stopped".into())
        .await?; // held by the client
    nats.start().await?;
    let job = tokio::time::timeout(PATIENCE, jobs.next()).await?;
    assert_eq!(job.map(|m| m.payload), Some("while-stopped".into()));
    ctx.wait_for(named()).timeout(PATIENCE).await?;
    Ok(())
}

/// What a test publishes and never flushes is sent by the drain at its
/// teardown: a child test publishes 500 messages and returns at once.
#[dynamo_test(services(nats(isolated)), timeout = "90s")]
async fn nats_client_is_drained_at_teardown(client: async_nats::Client, nats: Nats) -> TestResult {
    let subject = nats.subject("drained");
    let mut received = client.subscribe(subject.clone()).await?;
    client.flush().await?;
    let (out, text) = scenario(
        &["nats-publish", &subject, "500"],
        &[("NATS_SERVER", nats.url())],
    )
    .await;
    assert!(out.status.success(), "{text}");
    assert!(text.contains("published 500"), "{text}");
    assert!(
        text.contains("teardown: drain the NATS client `client`"),
        "{text}"
    );
    assert!(!text.contains("not drained"), "{text}");
    for i in 0..500 {
        let message = tokio::time::timeout(PATIENCE, received.next())
            .await
            .map_err(|_| format!("message {i} of 500 never came: not drained?\n{text}"))?;
        assert_eq!(message.map(|m| m.payload), Some(i.to_string().into()));
    }
    Ok(())
}

/// `ETCD_ENDPOINTS` naming a live etcd and a closed port: the harness's
/// health check (the first endpoint) passes, the client's status check of
/// every endpoint fails setup, naming the one that did not answer and
/// why, before the body.
#[dynamo_test(services(etcd(isolated)), timeout = "60s")]
async fn an_etcd_endpoint_that_does_not_answer_fails_setup(etcd: Etcd, closed: Port) -> TestResult {
    let dead = format!("http://127.0.0.1:{}", closed.get()); // reserved: nobody listens
    let endpoints = format!("{},{dead}", etcd.url());
    let (out, text) = scenario(&["etcd"], &[("ETCD_ENDPOINTS", &endpoints)]).await;
    assert!(!out.status.success(), "{text}");
    assert!(!text.contains("body ran"), "{text}");
    for expected in [
        "cannot inject parameter `client`",
        "expected every endpoint of the test's etcd to answer",
        "1 of 2 did not",
        &format!("{}: ok (etcd ", etcd.url()),
        &format!("{dead}: Unavailable"),
        "Connection refused",
        "ETCD_ENDPOINTS",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
    Ok(())
}

/// An endpoint that passes etcd's HTTP health check but does not speak
/// gRPC fails setup too.
#[dynamo_test(timeout = "60s")]
async fn an_endpoint_that_is_not_etcd_fails_setup(fake: Port) -> TestResult {
    let url = fake.url("");
    let listener = fake.into_tokio_listener()?;
    serve(listener, |_| {
        Behaviour::Respond(response(200, "", r#"{"health":"true"}"#))
    });
    let (out, text) = scenario(&["etcd"], &[("ETCD_ENDPOINTS", url.trim_end_matches('/'))]).await;
    assert!(!out.status.success(), "{text}");
    assert!(!text.contains("body ran"), "{text}");
    assert!(text.contains("1 of 1 did not"), "{text}");
    assert!(
        text.contains(&format!("{}: ", url.trim_end_matches('/'))),
        "{text}"
    );
    Ok(())
}

/// `NATS_SERVER` naming a port that accepts and closes (the harness's TCP
/// check passes): the client's first connection fails setup, saying where
/// and why, before the body.
#[dynamo_test(timeout = "60s")]
async fn a_nats_server_that_is_not_nats_fails_setup(fake: Port) -> TestResult {
    let url = format!("nats://127.0.0.1:{}", fake.get());
    serve_closing(fake.into_tokio_listener()?);
    let (out, text) = scenario(&["nats"], &[("NATS_SERVER", &url)]).await;
    assert!(!out.status.success(), "{text}");
    assert!(!text.contains("body ran"), "{text}");
    for expected in [
        "cannot inject parameter `client`",
        &format!("expected the NATS client to connect to the test's NATS at {url} during setup: "),
        "NATS_SERVER",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
    Ok(())
}

#[test]
fn the_readme_shows_the_examples_compiled_here() {
    let readme = include_str!("../../README.md");
    let this = include_str!("clients.rs");
    for start in [
        "```rust,ignore\n// tests/tests/clients.rs (etcd)\n",
        "```rust,ignore\n// tests/tests/clients.rs (NATS)\n",
    ] {
        let block = readme
            .split_once(start)
            .and_then(|(_, rest)| rest.split_once("```\n"))
            .map(|(block, _)| block)
            .unwrap_or_else(|| panic!("README.md has no block starting {start:?}"));
        assert!(
            this.contains(block),
            "README.md's example differs from this file's:\n{block}"
        );
    }
}

/// `request()` again after each error of a lost connection (a request
/// routed to a member that is down, in flight when it died, or to one
/// whose reconnection failed while it was down: tonic hands that error to
/// the next request), until it answers or [`PATIENCE`] is over.
async fn retrying_connection_lost<T, Fut>(
    what: &str,
    mut request: impl FnMut() -> Fut,
) -> Result<T, String>
where
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        match request().await {
            Ok(answer) => return Ok(answer),
            Err(e) if is_connection_lost(&e) && Instant::now() < deadline => {
                // The last few only, and a pause: no spinning while a
                // member is down.
                if seen.len() == 5 {
                    seen.remove(0);
                }
                seen.push(e.to_string());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(format!("{what}: {e} (after {seen:?})")),
        }
    }
}

/// How many keys the test has under its prefix, asked through `client`
/// (retried while the connection is being re-established).
async fn keys_of_the_test(client: &etcd_client::Client, etcd: &Etcd) -> Result<i64, String> {
    let mine = retrying_connection_lost("get", || {
        let mut client = client.clone();
        let prefix = etcd.key_prefix();
        async move {
            client
                .get(prefix, Some(GetOptions::new().with_prefix()))
                .await
        }
    })
    .await?;
    Ok(mine.count())
}

/// A request that found no connection to the member it went to: gRPC
/// `Unavailable` (refused, or etcd's own "request timed out, possibly due
/// to connection lost"), or any status caused by the transport below it
/// (`Cancelled` "connection closed", `Unknown` "transport error": a
/// connection that closed under the request, or before the client saw it
/// close).
fn is_connection_lost(e: &etcd_client::Error) -> bool {
    let etcd_client::Error::GRpcStatus(status) = e else {
        return false;
    };
    format!("{:?}", status.code()) == "Unavailable" || std::error::Error::source(status).is_some()
}

/// Runs the scenario binary with `env` and returns its output, stdout and
/// stderr as one text.
async fn scenario(args: &[&str], env: &[(&str, &str)]) -> (Output, String) {
    let mut cmd = tokio::process::Command::new(SCENARIO);
    // Its failures are on purpose: no CI copies of their reports.
    cmd.args(args)
        .env_remove("ETCD_ENDPOINTS")
        .env_remove("NATS_SERVER")
        .env_remove("CI")
        .env_remove("DYNAMO_TEST_ARTIFACTS_DIR")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}
