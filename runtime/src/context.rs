//! `TestContext`: everything one test owns, and the order it is released in.

use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::Error;
use crate::health::{self, Probe, Ready};
use crate::output_dir::OutputDir;
use crate::ports::{self, Port};
use crate::process::{ManagedProcess, ProcessBuilder};
use crate::services::ServiceKind;
use crate::sync::lock;

/// Limit of [`TestContext::wait_for`].
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

type TeardownFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Something the test acquired and the context releases at teardown.
enum Resource {
    /// A port reservation held for the whole test.
    Port(Port),
    /// A cleanup action registered with [`TestContext::defer`].
    Deferred {
        label: String,
        action: TeardownFuture,
    },
}

/// The context of one running test: its name, its output directory, its
/// ports, and everything it acquired.
///
/// `#[dynamo_test]` creates it before the first parameter is injected and
/// tears it down after the body ends (success, error, panic or timeout),
/// releasing what was acquired in reverse order. Cloning is cheap: clones
/// are handles to the same context.
#[derive(Clone)]
pub struct TestContext {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    namespace: String,
    output_dir: OutputDir,
    port_table: Mutex<Vec<(String, u16)>>,
    resources: Mutex<Vec<Resource>>,
    /// Env vars every child gets (service endpoints, namespace).
    child_env: Mutex<Vec<(String, String)>>,
    /// `(process name, log path)` of every child, for failure reports.
    logs: Mutex<Vec<(String, PathBuf)>>,
    /// The services the test uses, obtained once each.
    services: Mutex<Vec<(ServiceKind, ServiceSlot)>>,
}

/// The cell holding one service of a test.
pub(crate) type ServiceSlot = Arc<tokio::sync::OnceCell<Arc<crate::services::Instance>>>;

impl TestContext {
    /// A context for the test named `name` (its full path, e.g.
    /// `my_crate::tests::frontend_serves`). Creates its output directory.
    pub fn new(name: &str) -> Result<TestContext, Error> {
        let output_dir = OutputDir::create(name)?;
        Ok(TestContext {
            inner: Arc::new(Inner {
                name: name.to_string(),
                namespace: namespace_for(name),
                output_dir,
                port_table: Mutex::new(Vec::new()),
                resources: Mutex::new(Vec::new()),
                child_env: Mutex::new(Vec::new()),
                logs: Mutex::new(Vec::new()),
                services: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The test's full name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// A namespace unique to this test run (`[a-z0-9-]`), for Dynamo's
    /// `DYN_NAMESPACE`, etcd key prefixes and NATS subjects on shared
    /// infrastructure. Children get it as `DYN_NAMESPACE`.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Describes a child process owned by this test; see [`ProcessBuilder`].
    ///
    /// ```no_run
    /// # async fn doc(ctx: &dynamo_test::TestContext, port: u16) -> Result<(), dynamo_test::Error> {
    /// use dynamo_test::health;
    /// let server = ctx
    ///     .process("frontend", "my-frontend")
    ///     .args(["--port", &port.to_string()])
    ///     .ready(health::http(format!("http://127.0.0.1:{port}/health")))
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn process(&self, name: &str, program: impl Into<std::ffi::OsString>) -> ProcessBuilder {
        ProcessBuilder::new(self, name, program.into())
    }

    /// The env vars every child of this test gets (`DYN_NAMESPACE`, and the
    /// endpoints of the services the test uses).
    pub fn child_env(&self) -> Vec<(String, String)> {
        let mut env = vec![("DYN_NAMESPACE".to_string(), self.inner.namespace.clone())];
        env.extend(lock(&self.inner.child_env).iter().cloned());
        env
    }

    /// Adds an env var that every child started afterwards gets.
    pub fn set_child_env(&self, key: &str, value: &str) {
        lock(&self.inner.child_env).push((key.to_string(), value.to_string()));
    }

    /// Prints a harness line for this test (captured with its output).
    pub fn note(&self, message: &str) {
        log(&self.inner.name, message);
    }

    /// A fresh log path for process `name`, `<output dir>/<name>.log`
    /// (`<name>-2.log`, ... if taken), emptied and reserved at once, so
    /// that processes started concurrently never share a log.
    pub(crate) fn new_log_path(&self, name: &str) -> PathBuf {
        let mut logs = lock(&self.inner.logs);
        let taken = |path: &PathBuf| logs.iter().any(|(_, t)| t == path);
        let mut n = 1;
        let mut path = self.inner.output_dir.log_file(name, n);
        while taken(&path) {
            n += 1;
            path = self.inner.output_dir.log_file(name, n);
        }
        let _ = std::fs::remove_file(&path);
        logs.push((name.to_string(), path.clone()));
        path
    }

    /// Makes `process` part of the test: its log is shown if the test
    /// fails, and it is stopped at teardown.
    pub(crate) fn register_process(&self, process: &ManagedProcess) {
        let handle = process.clone();
        self.defer(format!("stop process `{}`", process.name()), async move {
            handle.stop().await;
        });
    }

    /// The tail of every child's log, each line prefixed by the process
    /// name: printed when a test fails.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut report = String::new();
        for (name, path) in lock(&self.inner.logs).iter() {
            let _ = writeln!(report, "[{name}] log {}:", path.display());
            for line in crate::process::tail(path, lines).lines() {
                let _ = writeln!(report, "[{name}] {line}");
            }
        }
        report
    }

    /// The cell for the test's instance of `kind` (see `services`).
    pub(crate) fn service_slot(&self, kind: ServiceKind) -> ServiceSlot {
        let mut services = lock(&self.inner.services);
        if let Some((_, slot)) = services.iter().find(|(k, _)| *k == kind) {
            return slot.clone();
        }
        let slot = ServiceSlot::default();
        services.push((kind, slot.clone()));
        slot
    }

    /// The ports of the isolated instance of `kind`, if the test has one.
    pub(crate) fn isolated_ports(
        &self,
        kind: ServiceKind,
    ) -> Option<crate::services::ServicePortPair> {
        let slot = self.service_slot(kind);
        let instance = slot.get()?;
        (instance.source == crate::services::Source::Isolated).then_some(instance.ports?)
    }

    /// The test's output directory (process logs and the like); it exists.
    pub fn output_dir(&self) -> &Path {
        self.inner.output_dir.path()
    }

    /// The port table: `(name, port)` for every port the test uses, in the
    /// order they were added.
    pub fn ports(&self) -> Vec<(String, u16)> {
        lock(&self.inner.port_table).clone()
    }

    /// The port table as one line: `api=23001 ports.dynamo_serve=8000`.
    pub fn port_table(&self) -> String {
        let mut line = String::new();
        for (name, port) in lock(&self.inner.port_table).iter() {
            if !line.is_empty() {
                line.push(' ');
            }
            let _ = write!(line, "{name}={port}");
        }
        if line.is_empty() {
            line.push_str("(none)");
        }
        line
    }

    /// Reserves a random port named `name`; the context holds the
    /// reservation until teardown.
    pub fn reserve_port(&self, name: &str) -> Result<u16, Error> {
        let port = self.take_port(name)?;
        let number = port.get();
        self.push(Resource::Port(port));
        Ok(number)
    }

    /// Reserves the first free port at or above `base`, held until teardown.
    pub fn reserve_port_from(&self, name: &str, base: u16) -> Result<u16, Error> {
        let port = ports::reserve(&self.port_label(name), Some(base))?;
        let number = port.get();
        self.record_port(name, number);
        self.push(Resource::Port(port));
        Ok(number)
    }

    /// Reserves a random port named `name` and hands the reservation to the
    /// caller (it is released when the [`Port`] is dropped). It still
    /// appears in the port table.
    pub fn take_port(&self, name: &str) -> Result<Port, Error> {
        let port = ports::reserve(&self.port_label(name), None)?;
        self.record_port(name, port.get());
        Ok(port)
    }

    /// Adds `name -> port` to the port table without reserving anything
    /// (e.g. a fixed infrastructure port).
    pub fn record_port(&self, name: &str, port: u16) {
        lock(&self.inner.port_table).push((name.to_string(), port));
    }

    /// Waits until `probe` is ready (at most [`DEFAULT_WAIT_TIMEOUT`]) and
    /// logs how long it took.
    ///
    /// `ctx.wait_for(health::http(api.url("/health"))).await?;`
    pub async fn wait_for(&self, probe: impl Probe) -> Result<Ready, Error> {
        self.wait_for_within(probe, DEFAULT_WAIT_TIMEOUT).await
    }

    /// Like [`TestContext::wait_for`] with a limit of `timeout`.
    pub async fn wait_for_within(
        &self,
        probe: impl Probe,
        timeout: Duration,
    ) -> Result<Ready, Error> {
        let outcome = health::wait(&probe, timeout).await;
        match &outcome {
            Ok(r) => log(
                &self.inner.name,
                &format!(
                    "ready: {} in {:.1?} ({} attempts)",
                    r.probe, r.elapsed, r.attempts
                ),
            ),
            Err(e) => log(&self.inner.name, &format!("not ready: {e}")),
        }
        Ok(outcome?)
    }

    /// Registers `action` to run at teardown. Actions run in reverse order of
    /// registration, interleaved with the release of everything else the
    /// test acquired.
    pub fn defer(
        &self,
        label: impl Into<String>,
        action: impl Future<Output = ()> + Send + 'static,
    ) {
        self.push(Resource::Deferred {
            label: label.into(),
            action: Box::pin(action),
        });
    }

    /// Releases everything the test acquired, newest first. Idempotent.
    pub(crate) async fn teardown(&self) {
        loop {
            // Pop one at a time: a deferred action may not hold the lock.
            let next = lock(&self.inner.resources).pop();
            match next {
                None => break,
                Some(Resource::Port(port)) => drop(port),
                Some(Resource::Deferred { label, action }) => {
                    let started = std::time::Instant::now();
                    action.await;
                    log(
                        &self.inner.name,
                        &format!("teardown: {label} ({:?})", started.elapsed()),
                    );
                }
            }
        }
    }

    fn push(&self, resource: Resource) {
        lock(&self.inner.resources).push(resource);
    }

    fn port_label(&self, name: &str) -> String {
        format!("{} ({name})", self.inner.name)
    }
}

impl std::fmt::Debug for TestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestContext")
            .field("name", &self.inner.name)
            .field("output_dir", &self.inner.output_dir.path())
            .field("ports", &self.port_table())
            .finish()
    }
}

/// Prints a harness line for test `name`. Uses `println!`, so libtest
/// captures it with the test's output and shows it when the test fails
/// (or always, under `--nocapture`).
///
/// `println!` panics when stdout is gone (`--nocapture | head`); a lost
/// log line must not abort the teardown that logs it, so the panic is
/// contained here (the panic hook still reports it on stderr).
pub(crate) fn log(name: &str, message: &str) {
    let _ = std::panic::catch_unwind(|| println!("[dynamo-test] {name}: {message}"));
}

/// `crate::mod::my_test` -> `my-test-<pid base36><4 random>-<n>`: unique
/// per test run, also across machines sharing one etcd (same pid, other
/// host), and valid in etcd keys, NATS subjects and Dynamo namespaces.
fn namespace_for(test_name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let short = test_name.rsplit("::").next().unwrap_or(test_name);
    let mut clean: String = short
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    if clean.is_empty() {
        clean.push_str("test");
    }
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let salt: String = (0..4)
        .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
        .collect();
    format!("{clean}-{}{salt}-{n}", base36(std::process::id()))
}

fn base36(mut n: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn namespaces_are_unique_and_safe() {
        let a = namespace_for("suite::mod_a::My_Test");
        let b = namespace_for("suite::mod_a::My_Test");
        assert_ne!(a, b);
        assert!(a.starts_with("my-test-"), "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{a}"
        );
        assert_eq!(base36(36 * 36 + 1), "101");
    }

    #[tokio::test]
    async fn teardown_runs_in_reverse_order_and_releases_ports() {
        let ctx = TestContext::new("unit::teardown_order").unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3 {
            let order = order.clone();
            ctx.defer(
                format!("step {i}"),
                async move { order.lock().unwrap().push(i) },
            );
        }
        let port = ctx.reserve_port("api").unwrap();
        assert!(ctx.port_table().contains(&format!("api={port}")));
        // A reservation does not occupy the socket: ask the lock files.
        let held = |p: u16| {
            ports::live_reservations()
                .unwrap()
                .iter()
                .any(|r| r.port == p)
        };
        assert!(held(port));
        ctx.teardown().await;
        assert_eq!(*order.lock().unwrap(), [2, 1, 0]);
        assert!(!held(port));
        ctx.teardown().await; // idempotent
    }

    #[tokio::test]
    async fn clones_share_one_context() {
        let ctx = TestContext::new("unit::clones").unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        ctx.clone().defer("count", async move {
            c.fetch_add(1, Ordering::SeqCst);
        });
        ctx.teardown().await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(ctx.output_dir().is_dir());
    }
}
