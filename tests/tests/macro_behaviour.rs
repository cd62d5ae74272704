//! What `#[dynamo_test]` does at run time: injection, flavors, timeouts,
//! error returns, panics, and fixtures of the user's own.

use std::time::Duration;

use dynamo_test::{dynamo_test, Error, Inject, Port, ServicePorts, TestContext};

#[dynamo_test]
async fn parameters_are_injected_in_any_order(
    ctx: &TestContext,
    api: u16,
    ports: ServicePorts,
    grpc: Port,
) {
    assert_ne!(api, grpc.get());
    assert_ne!(api, ports.dynamo_serve);
    let table = ctx.port_table();
    for expected in [
        format!("api={api}"),
        format!("grpc={grpc}"),
        format!("ports.dynamo_serve={}", ports.dynamo_serve),
        format!("ports.etcd_client={}", ports.etcd_client),
    ] {
        assert!(table.contains(&expected), "{expected} missing from {table}");
    }
    assert!(ctx
        .name()
        .ends_with("macro_behaviour::parameters_are_injected_in_any_order"));
    assert!(ctx.output_dir().is_dir());
}

#[dynamo_test]
fn a_plain_fn_gets_ports_too(api: u16, ctx: TestContext) {
    std::net::TcpListener::bind(("127.0.0.1", api)).unwrap();
    assert!(ctx.port_table().contains(&format!("api={api}")));
}

#[dynamo_test(timeout = "5s")]
fn a_plain_fn_with_a_timeout_runs_to_completion(api: u16) {
    std::net::TcpListener::bind(("127.0.0.1", api)).unwrap();
}

#[dynamo_test(flavor = "multi_thread", worker_threads = 3)]
async fn multi_thread_flavor_has_the_asked_workers() {
    assert_eq!(tokio::runtime::Handle::current().metrics().num_workers(), 3);
}

#[dynamo_test(start_paused = true, timeout = "5s")]
async fn start_paused_lets_an_hour_pass_at_once() {
    let before = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(before.elapsed() >= Duration::from_secs(3600));
}

#[dynamo_test]
async fn ok_result_passes(api: Port) -> Result<(), std::io::Error> {
    let listener = api.into_tokio_listener()?;
    assert!(listener.local_addr()?.port() > 0);
    Ok(())
}

#[dynamo_test]
#[should_panic(expected = "returned an error: \"boom\"")]
async fn error_result_fails_the_test() -> Result<(), String> {
    Err("boom".into())
}

#[dynamo_test(timeout = "100ms")]
#[should_panic(expected = "timed out after 100ms")]
async fn timeout_fails_the_test(api: u16) {
    let _ = api;
    tokio::time::sleep(Duration::from_secs(30)).await;
}

#[dynamo_test(timeout = "100ms")]
#[should_panic(expected = "timed out after 100ms")]
fn timeout_fails_a_plain_fn() {
    std::thread::sleep(Duration::from_secs(2));
}

#[dynamo_test]
#[should_panic(expected = "the body's own message")]
async fn a_panic_keeps_its_message() {
    panic!("the body's own message");
}

/// A fixture of the user's own, set up asynchronously.
struct Counter {
    value: usize,
    port: u16,
}

impl Inject for Counter {
    async fn inject(ctx: &TestContext, param: &str) -> Result<Self, Error> {
        tokio::task::yield_now().await;
        let port = ctx.reserve_port(&format!("{param}.port"))?;
        Ok(Counter { value: 41, port })
    }
}

#[dynamo_test]
async fn user_fixtures_are_injected_by_value_and_by_mut_ref(
    a: Counter,
    b: &mut Counter,
    ctx: &TestContext,
) {
    b.value += 1;
    assert_eq!((a.value, b.value), (41, 42));
    assert_ne!(a.port, b.port);
    assert!(ctx.port_table().contains(&format!("b.port={}", b.port)));
}

/// A fixture whose setup fails: the test fails naming the parameter.
struct Unreachable;

impl Inject for Unreachable {
    async fn inject(_ctx: &TestContext, _param: &str) -> Result<Self, Error> {
        Err(Error::fixture(
            "connecting to the fake database",
            "connection refused",
        ))
    }
}

#[dynamo_test]
#[should_panic(
    expected = "cannot inject parameter `db`: connecting to the fake database: connection refused"
)]
async fn a_failing_fixture_names_the_parameter(db: Unreachable) {
    let _ = db;
}

mod renamed {
    extern crate dynamo_test as harness;

    #[harness::dynamo_test(crate = "harness")]
    async fn the_crate_option_follows_a_rename(api: u16) {
        assert!(api > 0);
    }
}

#[dynamo_test(timeout = "100ms")]
#[should_panic(expected = "timed out after 100ms")]
async fn a_body_blocking_its_thread_still_times_out() {
    // No await point: the runtime cannot interrupt this body.
    std::thread::sleep(Duration::from_secs(3));
}

/// Each test prints its port table at its start, which libtest shows with
/// a failing test's output (and always under `--nocapture`). Test output is
/// captured in-process, so run a test of this binary in a child.
#[test]
fn the_port_table_is_printed_at_the_start() {
    let stdout = dynamo_test_suite::run_own_test("parameters_are_injected_in_any_order");
    let line = stdout
        .lines()
        .find(|l| l.contains("parameters_are_injected_in_any_order: ports: "))
        .unwrap_or_else(|| panic!("no port table in {stdout}"));
    for name in ["api=", "ports.etcd_client=", "ports.dynamo_serve=", "grpc="] {
        assert!(line.contains(name), "{name} missing from {line}");
    }
}
