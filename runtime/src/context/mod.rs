//! `TestContext`: everything one test owns, and the order it is released in.
//!
//! The modules below the context never see it: it offers them hooks
//! (`hooks.rs`: process owner, service host), a typed slot per kind of
//! fixture ([`TestContext::slot`]), the port plan's overrides, and deferred
//! teardown.

mod hooks;
mod log;
mod namespace;
mod wait;

use std::any::{Any, TypeId};
use std::fmt::Write as _;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::dynamo::StackBuilder;
use futures_util::FutureExt as _;

use crate::error::Error;
use crate::health::Probe;
use crate::output_dir::OutputDir;
use crate::ports::{self, PlanPort, Port, ServicePorts};
use crate::process::{ManagedProcess, ProcessBuilder};
use crate::sys::sync::lock;
pub(crate) use log::log;
use namespace::namespace_for;
pub use wait::{WaitFor, DEFAULT_WAIT_TIMEOUT};

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
    /// Every child started (handles), for the failure report.
    processes: Mutex<Vec<ManagedProcess>>,
    /// The teardown steps run so far, for the failure report.
    teardown_steps: Mutex<Vec<TeardownStep>>,
    /// One value per type, for the fixtures built on the context.
    slots: Mutex<Vec<(TypeId, Arc<dyn Any + Send + Sync>)>>,
    /// Fixed ports of the plan replaced for this test (private instances).
    plan_overrides: Mutex<Vec<(PlanPort, u16)>>,
    /// What went wrong during teardown (a process that would not exit):
    /// it fails a test that otherwise passed.
    teardown_problems: Mutex<Vec<String>>,
}

impl TestContext {
    /// A context for the test named `name` (its full path, e.g.
    /// `my_crate::tests::frontend_serves`). Creates its output directory.
    pub fn new(name: &str) -> Result<TestContext, Error> {
        let function = name.rsplit("::").next().unwrap_or(name);
        TestContext::create(name, function)
    }

    /// A context for case `case` (`case_1_etcd_nats`, `d_1_Etcd::p_2_Tcp`)
    /// of test function `test` (its full path): named `<test>::<case>`,
    /// with a namespace that starts with the function's and case's names.
    pub(crate) fn new_case(test: &str, case: &str) -> Result<TestContext, Error> {
        let function = test.rsplit("::").next().unwrap_or(test);
        TestContext::create(&format!("{test}::{case}"), &format!("{function}-{case}"))
    }

    /// `short`: the readable part of the namespace.
    fn create(name: &str, short: &str) -> Result<TestContext, Error> {
        let output_dir = OutputDir::create(name)?;
        Ok(TestContext {
            inner: Arc::new(Inner {
                name: name.to_string(),
                namespace: namespace_for(short),
                output_dir,
                port_table: Mutex::new(Vec::new()),
                resources: Mutex::new(Vec::new()),
                child_env: Mutex::new(Vec::new()),
                logs: Mutex::new(Vec::new()),
                processes: Mutex::new(Vec::new()),
                teardown_steps: Mutex::new(Vec::new()),
                slots: Mutex::new(Vec::new()),
                plan_overrides: Mutex::new(Vec::new()),
                teardown_problems: Mutex::new(Vec::new()),
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
        ProcessBuilder::new(Arc::new(self.clone()), name, program.into())
    }

    /// A Dynamo stack for this test (frontend and workers); see
    /// [`crate::dynamo`].
    ///
    /// ```no_run
    /// # async fn doc(ctx: &dynamo_test::TestContext, port: u16) -> Result<(), dynamo_test::Error> {
    /// let model = dynamo_test::dynamo::tiny_model(ctx.output_dir().join("tiny"))?;
    /// let stack = ctx.dynamo().frontend(port).mocker("tiny", &model).start().await?;
    /// # Ok(()) }
    /// ```
    pub fn dynamo(&self) -> StackBuilder {
        StackBuilder::new(Arc::new(self.clone()))
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

    /// The test's value of type `T`, made with `T::default()` on first
    /// use: one slot per type, shared by every clone of the context.
    pub(crate) fn slot<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut slots = lock(&self.inner.slots);
        let id = TypeId::of::<T>();
        if let Some(found) = slots.iter().find(|(t, _)| *t == id) {
            if let Ok(value) = found.1.clone().downcast::<T>() {
                return value;
            }
        }
        let value = Arc::new(T::default());
        slots.push((id, value.clone()));
        value
    }

    /// Replaces one fixed port of the plan for this test (a private
    /// instance's port), as an injected [`ServicePorts`] shows it.
    pub(crate) fn override_plan_port(&self, which: PlanPort, port: u16) {
        lock(&self.inner.plan_overrides).push((which, port));
    }

    /// The plan in force for this test: from the environment, with the
    /// test's own overrides.
    pub(crate) fn service_ports(&self) -> Result<ServicePorts, Error> {
        let mut plan = ServicePorts::from_env()?;
        for (which, port) in lock(&self.inner.plan_overrides).iter() {
            plan.set(*which, *port);
        }
        Ok(plan)
    }

    /// This run's output directory, `<output root>/<test>/<run id>/`
    /// (process logs, isolated services' data dirs and the like): one for
    /// the whole test, never shared with another run of the same test; it
    /// exists.
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

    /// Waits until `probe` is ready, at most [`DEFAULT_WAIT_TIMEOUT`] unless
    /// [`.timeout(..)`](WaitFor::timeout) says otherwise, and logs how long
    /// it took (or why it failed).
    ///
    /// ```no_run
    /// # async fn doc(ctx: &dynamo_test::TestContext) -> Result<(), dynamo_test::Error> {
    /// use std::time::Duration;
    /// use dynamo_test::health;
    /// ctx.wait_for(health::http("http://127.0.0.1:8000/health")).await?;
    /// ctx.wait_for(health::tcp("127.0.0.1:4222"))
    ///     .timeout(Duration::from_secs(5))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn wait_for<P: Probe>(&self, probe: P) -> WaitFor<'_, P> {
        WaitFor::new(self, probe)
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

    /// A handle that does not keep the context alive (for its own steps).
    pub(crate) fn downgrade(&self) -> WeakContext {
        WeakContext(Arc::downgrade(&self.inner))
    }

    /// Records that a teardown step went wrong (a fixture that could not
    /// clean up, a process still there): teardown goes on, and once it is
    /// over the test fails with `problem` in its verdict, even if its body
    /// passed. For the actions registered with [`defer`](Self::defer).
    ///
    /// ```no_run
    /// # fn doc(ctx: &dynamo_test::TestContext) {
    /// let c = ctx.clone();
    /// ctx.defer("drop the test database", async move {
    ///     if let Err(e) = std::fs::remove_dir_all("/tmp/my-db") {
    ///         c.teardown_failed(format!("the test database is still there: {e}"));
    ///     }
    /// });
    /// # }
    /// ```
    pub fn teardown_failed(&self, problem: impl Into<String>) {
        let problem = problem.into();
        log(&self.inner.name, &format!("teardown: {problem}"));
        lock(&self.inner.teardown_problems).push(problem);
    }

    /// Takes `process` in for the failure report (the owner hook stops it).
    pub(crate) fn record_process(&self, process: &ManagedProcess) {
        lock(&self.inner.processes).push(process.clone());
    }

    /// Every child the test started, in order.
    pub(crate) fn processes(&self) -> Vec<ManagedProcess> {
        lock(&self.inner.processes).clone()
    }

    /// The teardown steps run so far, in order.
    pub(crate) fn teardown_steps(&self) -> Vec<TeardownStep> {
        lock(&self.inner.teardown_steps).clone()
    }

    /// What went wrong during teardown so far.
    pub(crate) fn teardown_problems(&self) -> Vec<String> {
        lock(&self.inner.teardown_problems).clone()
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
                    let problems_before = lock(&self.inner.teardown_problems).len();
                    // A step that panics is a failed step, not the end of
                    // the teardown: the rest still runs.
                    if let Err(payload) = AssertUnwindSafe(action).catch_unwind().await {
                        self.teardown_failed(format!(
                            "teardown step `{label}` panicked: {}",
                            panic_text(payload.as_ref())
                        ));
                    }
                    let took = started.elapsed();
                    log(&self.inner.name, &format!("teardown: {label} ({took:?})"));
                    let problems = lock(&self.inner.teardown_problems)[problems_before..].to_vec();
                    lock(&self.inner.teardown_steps).push(TeardownStep {
                        label,
                        took,
                        problems,
                    });
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

/// A panic's message, when it is text.
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(a panic payload that is not text)")
}

/// One step of a teardown, as the failure report shows it.
#[derive(Debug, Clone)]
pub(crate) struct TeardownStep {
    pub label: String,
    pub took: std::time::Duration,
    /// What went wrong during it (see [`TestContext::teardown_failed`]).
    pub problems: Vec<String>,
}

/// A [`TestContext`] that does not keep it alive.
pub(crate) struct WeakContext(std::sync::Weak<Inner>);

impl WeakContext {
    /// The context, if it is still alive.
    pub(crate) fn upgrade(&self) -> Option<TestContext> {
        self.0.upgrade().map(|inner| TestContext { inner })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
        // A reservation does not occupy the socket: ask the reservations.
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

    #[test]
    fn a_case_is_named_after_its_function_and_case() {
        let one = TestContext::new_case("suite::matrix", "case_1_etcd_nats").unwrap();
        let two = TestContext::new_case("suite::matrix", "case_2_file_tcp").unwrap();
        assert_eq!(one.name(), "suite::matrix::case_1_etcd_nats");
        assert_eq!(two.name(), "suite::matrix::case_2_file_tcp");
        assert!(
            one.namespace().starts_with("matrix-case-1-etcd-nats-"),
            "{}",
            one.namespace()
        );
        assert!(
            two.namespace().starts_with("matrix-case-2-file-tcp-"),
            "{}",
            two.namespace()
        );
        // Each case's runs in a directory of the case's own.
        let test_dir = |ctx: &TestContext| ctx.output_dir().parent().unwrap().to_path_buf();
        assert!(
            test_dir(&one).ends_with("suite.matrix.case_1_etcd_nats"),
            "{:?}",
            one.output_dir()
        );
        assert!(
            test_dir(&two).ends_with("suite.matrix.case_2_file_tcp"),
            "{:?}",
            two.output_dir()
        );
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

    #[test]
    fn a_slot_holds_one_value_per_type_for_every_clone() {
        #[derive(Default)]
        struct Counter(AtomicUsize);
        let ctx = TestContext::new("unit::slots").unwrap();
        ctx.slot::<Counter>().0.fetch_add(1, Ordering::SeqCst);
        ctx.clone()
            .slot::<Counter>()
            .0
            .fetch_add(1, Ordering::SeqCst);
        assert_eq!(ctx.slot::<Counter>().0.load(Ordering::SeqCst), 2);
        assert_eq!(
            *ctx.slot::<Mutex<Vec<u8>>>().lock().unwrap(),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn plan_overrides_show_in_the_tests_plan_only() {
        let ctx = TestContext::new("unit::plan_overrides").unwrap();
        let before = ctx.service_ports().unwrap();
        ctx.override_plan_port(PlanPort::EtcdClient, 24001);
        ctx.override_plan_port(PlanPort::NatsHttp, 24002);
        let after = ctx.service_ports().unwrap();
        assert_eq!((after.etcd_client, after.nats_http), (24001, 24002));
        assert_eq!(after.etcd_peer, before.etcd_peer);
        let other = TestContext::new("unit::plan_overrides_other").unwrap();
        assert_eq!(other.service_ports().unwrap(), before);
    }

    #[tokio::test]
    async fn wait_for_has_a_default_limit_and_takes_another() {
        let ctx = TestContext::new("unit::wait_for").unwrap();
        let never = crate::health::from_fn("never", || async {
            crate::health::Check::not_ready("not yet")
        });
        let err = ctx
            .wait_for(never)
            .timeout(std::time::Duration::from_millis(30))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("timed out waiting for never"), "{text}");
        assert!(text.contains("limit 30ms"), "{text}");
        let ready = ctx
            .wait_for(crate::health::from_fn("at once", || async {
                crate::health::Check::Ready
            }))
            .await
            .unwrap();
        assert_eq!(ready.attempts, 1);
        assert_eq!(DEFAULT_WAIT_TIMEOUT, std::time::Duration::from_secs(30));
    }
}
