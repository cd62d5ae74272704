//! Helpers shared by the harness's own integration tests (in `tests/tests/`).

pub mod orphans;
pub mod servers;

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;

/// The suite's own directory, shared by every process of the suite (the
/// threads of `cargo test`, the processes of `cargo nextest`).
fn suite_dir() -> PathBuf {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    PathBuf::from(format!("/tmp/dynamo-test-suite-{uid}"))
}

/// Where [`hold`] marks ports.
fn held_dir() -> PathBuf {
    suite_dir().join("held")
}

/// Waits for, then holds until dropped, the suite-wide lock `name`: for
/// tests that must not overlap, in one process or across nextest's. (A
/// real `dynamo-test clean` stops *every* tagged orphan of the user, so a
/// test that keeps a fake orphan alive must not meet another's clean.)
pub fn exclusive(name: &str) -> File {
    let dir = suite_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(format!("{name}.lock"));
    let file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file
}

/// `name` in the suite's own directory (which exists), shared by every
/// process of the suite.
pub fn suite_file(name: &str) -> PathBuf {
    let dir = suite_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir.join(name)
}

/// This run of the suite: nextest's run id (every test process of one
/// `cargo nextest run` has it), else this process (which holds every test
/// of a `cargo test` binary).
pub fn run_id() -> String {
    std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| format!("pid-{}", std::process::id()))
}

/// Marks `ports` as held by the calling test; panics if any is held
/// already, by a thread of this process or by another process. A second,
/// independent check that the allocator never hands one number to two
/// holders: one flock per port in a directory of the suite's own (flocks
/// of two opens conflict, in one process or two; a dead holder's go away).
/// The returned guard unmarks them.
pub fn hold(ports: &[u16]) -> HeldPorts {
    let dir = held_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let marks = ports
        .iter()
        .map(|p| {
            let path = dir.join(p.to_string());
            let file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            match file.try_lock() {
                Ok(()) => file,
                Err(std::fs::TryLockError::WouldBlock) => {
                    panic!("port {p} granted to two tests at once")
                }
                Err(e) => panic!("{}: {e:?}", path.display()),
            }
        })
        .collect();
    HeldPorts { _marks: marks }
}

/// Ports marked by [`hold`]; unmarked on drop (closing the files).
pub struct HeldPorts {
    _marks: Vec<File>,
}

/// Binds every port on 127.0.0.1 and, where IPv6 works, on `[::1]`: what a
/// test's servers would do. Panics with the port when a bind fails.
pub fn bind_all(ports: &[u16]) -> Vec<TcpListener> {
    let mut listeners = Vec::new();
    for &p in ports {
        listeners.push(
            TcpListener::bind(("127.0.0.1", p))
                .unwrap_or_else(|e| panic!("bind 127.0.0.1:{p}: {e}")),
        );
        if let Ok(v6) = TcpListener::bind(("::1", p)) {
            listeners.push(v6);
        }
    }
    listeners
}

/// Defines one `#[dynamo_test]` per name: each takes three ports (`u16`,
/// `Port`, `ServicePorts`), marks them held, binds them and holds them a
/// while. Used by two test binaries, which nextest runs at the same time.
#[macro_export]
macro_rules! port_tests {
    ($($name:ident),* $(,)?) => {$(
        #[::dynamo_test::dynamo_test(timeout = "60s")]
        async fn $name(api: u16, worker: ::dynamo_test::Port, ports: ::dynamo_test::ServicePorts) {
            let numbers = [api, worker.get(), ports.dynamo_serve];
            let _held = $crate::hold(&numbers);
            let _listeners = $crate::bind_all(&numbers);
            assert!(ports.dynamo_serve >= ports.dynamo_serve_base);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    )*};
}

/// Waits (up to 2 s) for a line of `process`'s log starting with `prefix`;
/// returns the rest of it. Panics with the log tail otherwise.
pub async fn wait_for_line(process: &dynamo_test::ManagedProcess, prefix: &str) -> String {
    let pattern =
        dynamo_test::process::LogPattern::regex(&format!("^{}", regex_lite::escape(prefix)))
            .expect("an escaped prefix is a regex");
    match process
        .wait_for_log(pattern, std::time::Duration::from_secs(60))
        .await
    {
        Ok(line) => line.strip_prefix(prefix).unwrap_or(&line).to_string(),
        Err(e) => panic!("no line starting with {prefix:?}: {e}"),
    }
}

/// Whether `done` holds within `limit`, asked every 10 ms (fine enough for
/// the orphan check's "gone after" figure).
pub fn eventually(limit: std::time::Duration, done: impl Fn() -> bool) -> bool {
    let started = std::time::Instant::now();
    while !done() {
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

/// Runs test `name` of the calling test binary alone in a child process,
/// with `--nocapture`: libtest captures a test's output in-process, so a
/// test that checks what another prints reads it from the child's stdout.
/// Returns the child's stdout; panics if the child failed.
pub fn run_own_test(name: &str) -> String {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "child run of {name} failed: {stdout}"
    );
    stdout
}

/// Env vars moving the port plan's two ports of `kind` (client, and peer
/// or monitor) to reserved ones, so that a test starts its services there
/// without touching the run's own.
pub fn plan_env(
    kind: dynamo_test::admin::ServiceKind,
    client: &dynamo_test::Port,
    second: &dynamo_test::Port,
) -> Vec<(&'static str, String)> {
    use dynamo_test::admin::ServiceKind;
    use dynamo_test::admin::{
        ENV_ETCD_CLIENT_PORT, ENV_ETCD_PEER_PORT, ENV_NATS_CLIENT_PORT, ENV_NATS_HTTP_PORT,
    };
    let (client_var, second_var) = match kind {
        ServiceKind::Etcd => (ENV_ETCD_CLIENT_PORT, ENV_ETCD_PEER_PORT),
        ServiceKind::Nats => (ENV_NATS_CLIENT_PORT, ENV_NATS_HTTP_PORT),
    };
    vec![
        (client_var, client.to_string()),
        (second_var, second.to_string()),
    ]
}
