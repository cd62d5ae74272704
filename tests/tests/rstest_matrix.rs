//! Matrices of cases: rstest's `#[values]` and `#[case]` under
//! `#[dynamo_test]` (written above `#[rstest]`). Each case is a test of its
//! own, with its own name (libtest's name for the case), output directory,
//! namespace, ports, processes and teardown.
//!
//! The two-by-two matrix starts a different stack in each case: its worker
//! is a private `nats-server` (plane `Nats`) or an HTTP server
//! (`http_child`, plane `Tcp`), announced through the shared etcd under
//! the case's namespace (discovery `Etcd`) or in a file of the case's
//! output directory (`File`); the case finds it there and talks to it.
//! Each case also
//! - checks its name, and that no other case of the run had its name,
//!   namespace or output directory (a file the run's cases share);
//! - marks its ports held: the suite's own check that no port is granted to
//!   two tests at once (other cases of this file run at the same time
//!   under `cargo test`, and in other processes under nextest);
//! - checks at the end of its body that its worker still runs (another
//!   case's teardown did not stop it), and at its own teardown, after the
//!   worker's stop, that the worker is gone.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dynamo_test::{dynamo_test, health, Error, Etcd, ManagedProcess, TestContext};
use dynamo_test_suite::{exclusive, hold, run_id, suite_file, wait_for_line};
use futures_util::StreamExt as _;
use rstest::{fixture, rstest};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const HTTP_CHILD: &str = env!("CARGO_BIN_EXE_http_child");

/// How a case's client finds its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Discovery {
    /// A key under the case's prefix in the shared etcd.
    Etcd,
    /// A file in the case's output directory.
    File,
}

/// What the worker is, and how the client talks to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plane {
    /// A `nats-server` of the case's own: a message there and back.
    Nats,
    /// An HTTP server: one request, seen in the worker's log.
    Tcp,
}

#[dynamo_test(services(etcd), timeout = "120s")]
#[rstest]
async fn matrix(
    #[values(Discovery::Etcd, Discovery::File)] discovery: Discovery,
    #[values(Plane::Nats, Plane::Tcp)] plane: Plane,
    client: u16,
    monitor: u16,
    etcd: Etcd,
    ctx: &TestContext,
) -> Result<(), Error> {
    // rstest names a case after each value's position and text.
    let expected = format!(
        "rstest_matrix::matrix::discovery_{}_Discovery__{discovery:?}::plane_{}_Plane__{plane:?}",
        discovery as usize + 1,
        plane as usize + 1,
    );
    assert_eq!(ctx.name(), expected);
    let _held = hold(&[client, monitor]);
    record_and_check_distinct(ctx);

    // Registered before the worker starts: teardown goes newest first, so
    // this runs after the worker's stop.
    let worker_pid = Arc::new(OnceLock::new());
    check_gone_at_teardown(ctx, worker_pid.clone());
    let (worker, url) = start_worker(plane, client, monitor, ctx).await?;
    let _ = worker_pid.set(worker.pid());
    assert!(worker.log_path().starts_with(ctx.output_dir()));

    let found = match discovery {
        Discovery::Etcd => {
            etcd.put(&etcd.key("worker"), &url).await?;
            let listed = etcd.list(&etcd.key_prefix()).await?;
            // Only this case's key under its namespace, though the other
            // cases use the same etcd.
            assert_eq!(listed, [(etcd.key("worker"), url.clone())]);
            listed[0].1.clone()
        }
        Discovery::File => {
            let file = ctx.output_dir().join("workers");
            std::fs::write(&file, &url).unwrap();
            std::fs::read_to_string(&file).unwrap()
        }
    };
    talk(plane, &found, &worker, ctx).await;
    Ok(())
}

/// Two cases of a plain `fn`, each named after its case.
#[dynamo_test(timeout = "60s")]
#[rstest]
#[case::first(1)]
#[case::second(2)]
fn named_cases(#[case] n: u32, api: u16, ctx: &TestContext) {
    let description = ["first", "second"][n as usize - 1];
    assert_eq!(
        ctx.name(),
        format!("rstest_matrix::named_cases::case_{n}_{description}")
    );
    let _held = hold(&[api]);
    record_and_check_distinct(ctx);
}

#[fixture]
fn answer() -> u32 {
    42
}

/// rstest without cases makes one test, of the function's own name; an
/// rstest fixture is named with `#[from(..)]` (a parameter without an
/// rstest attribute is the harness's).
#[dynamo_test]
#[rstest]
async fn an_rstest_fixture(#[from(answer)] n: u32, ctx: &TestContext) {
    assert_eq!(n, 42);
    assert_eq!(ctx.name(), "rstest_matrix::an_rstest_fixture");
}

/// The README's example (the test below checks that the README shows it
/// as it is here): a stack of one or two workers per case.
#[dynamo_test(timeout = "60s")] // above #[rstest]
#[rstest]
#[case::at_once("0")]
#[case::after_a_while("200")]
async fn worker_matrix(
    #[case] delay_ms: &'static str, // rstest's: one value per case
    #[values(1, 2)] workers: u16,   // rstest's: crossed with each case
    ctx: &TestContext,              // the harness's: one per case
) -> Result<(), Error> {
    // Four tests, each with its own name, output directory, namespace, ports
    // and teardown, e.g. rstest_matrix::worker_matrix::case_2_after_a_while::workers_1_1
    for i in 1..=workers {
        let name = format!("worker-{i}");
        let port = ctx.reserve_port(&name)?;
        ctx.process(&name, HTTP_CHILD) // the suite's stand-in HTTP server
            .args([port.to_string(), delay_ms.to_string()])
            .ready(health::http(format!("http://127.0.0.1:{port}/health")))
            .start()
            .await?;
    }
    assert_eq!(ctx.ports().len(), usize::from(workers));
    Ok(())
}

#[test]
fn the_readme_shows_the_example_compiled_here() {
    let readme = include_str!("../../README.md");
    let start = "```rust,ignore\n// tests/tests/rstest_matrix.rs\n";
    let block = readme
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(block, _)| block)
        .expect("README.md has the matrix example");
    assert!(
        include_str!("rstest_matrix.rs").contains(block),
        "README.md's matrix example differs from worker_matrix here:\n{block}"
    );
}

/// Records the case's name, namespace and output directory in the file the
/// run's cases share, after checking that no case before had any of them.
/// Lines of other runs go (a run at the same time only loses some checks).
fn record_and_check_distinct(ctx: &TestContext) {
    let run = run_id();
    let facts = [
        format!("{run} name={}", ctx.name()),
        format!("{run} namespace={}", ctx.namespace()),
        format!("{run} output_dir={}", ctx.output_dir().display()),
    ];
    let _lock = exclusive("rstest_matrix");
    let path = suite_file("rstest_matrix.facts");
    let before = std::fs::read_to_string(&path).unwrap_or_default();
    let mut kept: Vec<&str> = before
        .lines()
        .filter(|l| l.split(' ').next() == Some(run.as_str()))
        .collect();
    for fact in &facts {
        assert!(
            !kept.contains(&fact.as_str()),
            "{}: another case had {fact}:\n{}",
            ctx.name(),
            kept.join("\n")
        );
    }
    kept.extend(facts.iter().map(String::as_str));
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
}

/// At teardown: the worker whose pid is in `pid` has exited (the harness
/// waits for the exit, then its reaper thread reaps: a zombie has exited);
/// else the case fails.
fn check_gone_at_teardown(ctx: &TestContext, pid: Arc<OnceLock<u32>>) {
    let c = ctx.clone();
    ctx.defer("check that the worker is gone", async move {
        if let Some(&pid) = pid.get() {
            if let Some(state) = running_state(pid) {
                c.teardown_failed(format!(
                    "its worker (pid {pid}) still runs after its stop (state {state})"
                ));
            }
        }
    });
}

/// The state letter of process `pid` (`/proc/<pid>/stat`) while it has not
/// exited; `None` once it has (a zombie, or gone).
fn running_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S ...`: the state follows the last `)`.
    let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
    (!matches!(state, 'Z' | 'X')).then_some(state)
}

/// The case's worker, ready, and the URL it serves on.
async fn start_worker(
    plane: Plane,
    client: u16,
    monitor: u16,
    ctx: &TestContext,
) -> Result<(ManagedProcess, String), Error> {
    match plane {
        Plane::Nats => {
            let (client, monitor) = (client.to_string(), monitor.to_string());
            let worker = ctx
                .process("worker", "nats-server")
                .args(["-a", "127.0.0.1", "-p", &client, "-m", &monitor])
                .ready(health::http(format!("http://127.0.0.1:{monitor}/healthz")))
                .start()
                .await?;
            Ok((worker, format!("nats://127.0.0.1:{client}")))
        }
        Plane::Tcp => {
            let worker = ctx
                .process("worker", HTTP_CHILD)
                .args([client.to_string()])
                .ready(health::http(format!("http://127.0.0.1:{client}/health")))
                .start()
                .await?;
            Ok((worker, format!("http://127.0.0.1:{client}")))
        }
    }
}

/// The client's side: a message through the worker, or a request to it.
async fn talk(plane: Plane, url: &str, worker: &ManagedProcess, ctx: &TestContext) {
    match plane {
        Plane::Nats => {
            let client = async_nats::connect(url).await.unwrap();
            let subject = format!("{}.ping", ctx.namespace());
            let mut sub = client.subscribe(subject.clone()).await.unwrap();
            client.flush().await.unwrap();
            let payload = ctx.name().to_string();
            client
                .publish(subject, payload.clone().into())
                .await
                .unwrap();
            let message = tokio::time::timeout(Duration::from_secs(30), sub.next())
                .await
                .expect("no message back within 30 s")
                .expect("subscription closed");
            assert_eq!(&message.payload[..], payload.as_bytes());
        }
        Plane::Tcp => {
            let address = url.strip_prefix("http://").unwrap();
            let path = format!("/{}", ctx.namespace());
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut reply = String::new();
            stream.read_to_string(&mut reply).await.unwrap();
            assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
            // This case's worker served it.
            wait_for_line(worker, &format!("request: GET {path} ")).await;
        }
    }
    assert!(
        worker.exit_status().is_none(),
        "the worker is still running"
    );
}
