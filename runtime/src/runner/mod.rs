//! Running one test: runtime, setup, body under the timeout, teardown, verdict.
//!
//! This is what `#[dynamo_test]` expands into (through `__private`); the
//! macro only parses and forwards.

mod case;
mod supervise;

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Duration;

use futures_util::FutureExt as _;

use crate::context::{log, panic_text, TestContext};
use crate::error::Error;
use crate::inject::require_services;
use crate::process::TAIL_LINES;
use crate::report;
use crate::services::ServiceRequest;
use crate::sys::real_time;
use supervise::supervise;

/// The tokio runtime flavor of an async test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// One thread: the test's own.
    CurrentThread,
    /// A thread pool of `worker_threads` (default: the number of CPUs).
    MultiThread {
        /// Number of worker threads.
        worker_threads: Option<usize>,
    },
}

/// A test's settings, as written in its attribute.
#[derive(Debug, Clone)]
pub struct TestConfig {
    /// Full test name (`module_path!()::fn`).
    pub name: &'static str,
    /// Limit for setup plus body.
    pub timeout: Option<Duration>,
    /// Runtime flavor (async tests).
    pub flavor: Flavor,
    /// Start tokio's clock paused (current-thread async tests).
    pub start_paused: bool,
    /// Services to obtain before the parameters are injected.
    pub services: &'static [ServiceRequest],
    /// The test is one case of a parametrized function (`#[rstest]`), and
    /// `name` the function's: the test is named `<name>::<case>` after the
    /// case libtest runs on this thread (`matrix::case_1_etcd_nats`), and
    /// so are its output directory and namespace (just `name` when libtest
    /// runs the function itself: rstest without cases).
    pub case: bool,
    /// The test carries `#[should_panic]`: its failure is its pass, so it
    /// writes no failure report.
    pub should_panic: bool,
}

/// What a test body may return: `()` or `Result<(), E>` with `E: Debug`.
#[diagnostic::on_unimplemented(
    message = "`#[dynamo_test]` functions must return `()` or `Result<(), E>` where `E: Debug`, not `{Self}`",
    label = "unsupported return type"
)]
pub trait TestResult {
    /// `Err` with the error's `Debug` text when the test failed.
    fn into_outcome(self) -> Result<(), String>;
}

impl TestResult for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Debug> TestResult for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// The body's verdict: `Err` with the error's text when it returned one.
pub type Outcome = Result<(), String>;

/// What running setup and body gives: the outcome, a setup error, or a panic.
type Run = Result<Result<Outcome, Error>, Box<dyn Any + Send>>;

/// How a test ended.
enum Ending {
    Passed,
    Returned(String),
    Setup(Error),
    Panicked(Box<dyn Any + Send>),
    TimedOut(Duration),
    /// The body passed; its teardown did not (a process would not exit).
    Teardown(String),
}

impl From<Run> for Ending {
    fn from(r: Run) -> Self {
        match r {
            Ok(Ok(Ok(()))) => Ending::Passed,
            Ok(Ok(Err(message))) => Ending::Returned(message),
            Ok(Err(error)) => Ending::Setup(error),
            Err(payload) => Ending::Panicked(payload),
        }
    }
}

/// Runs an async test: `test` injects the parameters and runs the body.
/// A timeout in `config` is enforced inside the runtime; the macro uses
/// [`run_async_with_timeout`] for tests that have one.
pub fn run_async<F, Fut>(config: TestConfig, test: F)
where
    F: FnOnce(TestContext) -> Fut,
    Fut: Future<Output = Result<Outcome, Error>>,
{
    let ctx = new_context(&config);
    let ending = run_in_runtime(&config, &ctx, test, &|| {});
    conclude(&config, &ctx, ending);
}

/// Like [`run_async`], with the runtime on a thread of its own: a body
/// that blocks its thread (`std::thread::sleep`, a deadlock) cannot stop
/// the test's thread from tearing down and failing at the limit.
pub fn run_async_with_timeout<F, Fut>(config: TestConfig, test: F)
where
    F: FnOnce(TestContext) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Outcome, Error>>,
{
    let Some(limit) = config.timeout else {
        return run_async(config, test);
    };
    let ctx = new_context(&config);
    let (config_, ctx_) = (config.clone(), ctx.clone());
    let ending = supervise(&ctx, limit, move |body_ended| {
        run_in_runtime(&config_, &ctx_, test, body_ended)
    });
    conclude(&config, &ctx, ending);
}

/// Builds the test's runtime and runs services, injection and body in it
/// (under the config's timeout, if any), calls `body_ended`, then tears
/// down.
fn run_in_runtime<F, Fut>(
    config: &TestConfig,
    ctx: &TestContext,
    test: F,
    body_ended: &dyn Fn(),
) -> Ending
where
    F: FnOnce(TestContext) -> Fut,
    Fut: Future<Output = Result<Outcome, Error>>,
{
    let runtime = match build_runtime(config) {
        Ok(rt) => rt,
        Err(e) => {
            body_ended();
            return Ending::Setup(Error::io("building the tokio runtime", e));
        }
    };
    let ending = runtime.block_on(async {
        // Boxed: a large test future lives on the heap, not on the stack
        // of the thread that blocks on it.
        let body = AssertUnwindSafe(Box::pin(async {
            require_services(ctx, config.services).await?;
            test(ctx.clone()).await
        }))
        .catch_unwind();
        let ending = match config.timeout {
            None => Ending::from(body.await),
            // On the real clock: `start_paused` must not end a test early.
            Some(limit) => match real_time::timeout(limit, body).await {
                Some(result) => Ending::from(result),
                None => Ending::TimedOut(limit),
            },
        };
        body_ended();
        before_teardown(config, ctx, &ending).await;
        ctx.teardown().await;
        ending
    });
    // Tasks the body spawned and left blocked must not hang the test.
    runtime.shutdown_timeout(Duration::from_secs(1));
    ending
}

/// Runs a plain (non-async) test: `setup` injects the parameters on a
/// current-thread runtime, `body` runs on the test's thread and returns
/// the outcome ([`TestResult::into_outcome`] of the test's return value).
pub fn run_sync<A, S, SF, B>(config: TestConfig, setup: S, body: B)
where
    S: FnOnce(TestContext) -> SF,
    SF: Future<Output = Result<A, Error>>,
    B: FnOnce(A) -> Outcome,
{
    let ctx = new_context(&config);
    let ending = setup_body_teardown(&config, &ctx, setup, body, &|| {});
    conclude(&config, &ctx, ending);
}

/// Like [`run_sync`], with a timeout: setup, body and teardown run on a
/// thread of their own; at the limit the test's thread tears down and
/// fails, abandoning that thread.
pub fn run_sync_with_timeout<A, S, SF, B>(config: TestConfig, setup: S, body: B)
where
    S: FnOnce(TestContext) -> SF + Send + 'static,
    SF: Future<Output = Result<A, Error>>,
    B: FnOnce(A) -> Outcome + Send + 'static,
{
    let Some(limit) = config.timeout else {
        return run_sync(config, setup, body);
    };
    let ctx = new_context(&config);
    let (config_, ctx_) = (config.clone(), ctx.clone());
    let ending = supervise(&ctx, limit, move |body_ended| {
        setup_body_teardown(&config_, &ctx_, setup, body, body_ended)
    });
    conclude(&config, &ctx, ending);
}

fn setup_body_teardown<A, S, SF, B>(
    config: &TestConfig,
    ctx: &TestContext,
    setup: S,
    body: B,
    body_ended: &dyn Fn(),
) -> Ending
where
    S: FnOnce(TestContext) -> SF,
    SF: Future<Output = Result<A, Error>>,
    B: FnOnce(A) -> Outcome,
{
    // A plain fn's config is current-thread, not paused (the macro refuses
    // runtime options there).
    let runtime = match build_runtime(config) {
        Ok(rt) => rt,
        Err(e) => {
            body_ended();
            return Ending::Setup(Error::io("building the tokio runtime", e));
        }
    };
    let setup = runtime.block_on(
        AssertUnwindSafe(Box::pin(async {
            require_services(ctx, config.services).await?;
            setup(ctx.clone()).await
        }))
        .catch_unwind(),
    );
    let ending = match setup {
        Ok(Ok(args)) => {
            let result = panic::catch_unwind(AssertUnwindSafe(|| body(args)));
            Ending::from(result.map(Ok))
        }
        Ok(Err(error)) => Ending::Setup(error),
        Err(payload) => Ending::Panicked(payload),
    };
    body_ended();
    runtime.block_on(async {
        before_teardown(config, ctx, &ending).await;
        ctx.teardown().await;
    });
    ending
}

/// A failing test says what became of the shared services it used (one
/// that died under it, an external one that stopped answering), and its
/// report observes what teardown destroys: looked at before teardown,
/// while the test still holds them.
async fn before_teardown(config: &TestConfig, ctx: &TestContext, ending: &Ending) {
    if matches!(ending, Ending::Passed) {
        return;
    }
    // A `#[should_panic]` test's failure is its pass: no report.
    let verdict = (!config.should_panic).then(|| verdict(ending));
    report::before_teardown(ctx, verdict.as_deref()).await;
}

/// How a test run by another runner (the pytest plugin) ended, as
/// [`end_elsewhere`] reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ended {
    /// What went wrong during teardown (it fails a test that passed).
    pub teardown_problems: Vec<String>,
    /// The failure report, when the test failed (or its teardown did).
    pub report: Option<PathBuf>,
}

/// Ends a test that another runner ran (its body, its verdict): what
/// `#[dynamo_test]` does after the body. `failure` is the runner's verdict
/// of a failed test in words (`None`: it passed). A failed test's report
/// is observed and written before teardown, then teardown runs, then the
/// final report is written (also for a test whose teardown failed).
pub async fn end_elsewhere(ctx: &TestContext, failure: Option<&str>) -> Ended {
    if failure.is_some() {
        report::before_teardown(ctx, failure).await;
    }
    ctx.teardown().await;
    let teardown_problems = ctx.teardown_problems();
    let verdict = match failure {
        Some(verdict) => Some(verdict.to_string()),
        None if teardown_problems.is_empty() => None,
        None => Some(verdict(&Ending::Teardown(teardown_problems.join("\n")))),
    };
    let report = verdict.and_then(|v| report::write(ctx, &v, report::Stage::Final));
    Ended {
        teardown_problems,
        report,
    }
}

/// Marks the end of setup: logs the port table. Called by the expansion
/// after the last parameter is injected.
pub fn enter_body(ctx: &TestContext) {
    log(ctx.name(), &format!("ports: {}", ctx.port_table()));
}

/// The test's context, named after the test (and its case, for one).
/// Called on the test's own thread, which libtest names after it.
fn new_context(config: &TestConfig) -> TestContext {
    let case = config.case.then(|| case::current(config.name)).flatten();
    let (made, name) = match case {
        None => (TestContext::new(config.name), config.name.to_string()),
        Some(case) => {
            let made = TestContext::new_case(config.name, &case);
            (made, format!("{}::{case}", config.name))
        }
    };
    match made {
        Ok(ctx) => ctx,
        Err(e) => panic!("[dynamo-test] {name}: cannot set up the test: {e}"),
    }
}

fn build_runtime(config: &TestConfig) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match config.flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread { worker_threads } => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = worker_threads {
                b.worker_threads(n);
            }
            b
        }
    };
    builder.enable_all();
    if config.start_paused {
        builder.start_paused(true);
    }
    builder.build()
}

/// Turns the ending into libtest's verdict: return for a pass, panic
/// otherwise. A teardown that went wrong fails a test that passed.
fn conclude(config: &TestConfig, ctx: &TestContext, ending: Ending) {
    let name = ctx.name();
    let problems = ctx.teardown_problems();
    let ending = match ending {
        Ending::Passed if !problems.is_empty() => Ending::Teardown(problems.join("\n")),
        other => other,
    };
    if !matches!(ending, Ending::Passed) {
        let tails = ctx.log_tails(TAIL_LINES);
        if !tails.is_empty() {
            log(
                name,
                &format!("logs of its processes (last {TAIL_LINES} lines each):\n{tails}"),
            );
        }
    }
    if matches!(ending, Ending::Passed) {
        return;
    }
    // A `#[should_panic]` test's failure is its pass: no report.
    let written = match config.should_panic {
        true => None,
        false => report::write(ctx, &verdict(&ending), report::Stage::Final),
    };
    let report = match written {
        Some(path) => format!("\nfailure report: {}", path.display()),
        None => String::new(),
    };
    let ports = ctx.port_table();
    match ending {
        Ending::Passed => {}
        Ending::Panicked(payload) => {
            log(name, &format!("panicked; ports were: {ports}{report}"));
            // Also beside the panic message (nextest shows stderr apart).
            if !report.is_empty() {
                eprintln!("[dynamo-test] {name}:{report}");
            }
            // Re-raise the original panic so `#[should_panic(expected = ..)]` sees it.
            panic::resume_unwind(payload)
        }
        Ending::Returned(message) => {
            panic!("[dynamo-test] {name} returned an error: {message}\nports: {ports}{report}")
        }
        Ending::Setup(error) => {
            panic!("[dynamo-test] {name}: setup failed: {error}\nports: {ports}{report}")
        }
        Ending::Teardown(problems) => panic!(
            "[dynamo-test] {name} passed, but its teardown failed:\n{problems}\nports: {ports}{report}"
        ),
        Ending::TimedOut(limit) => panic!(
            "[dynamo-test] {name} timed out after {limit:?} (the `timeout` of its #[dynamo_test] attribute); \
             teardown ran; ports: {ports}{report}"
        ),
    }
}

/// The report's verdict line.
fn verdict(ending: &Ending) -> String {
    match ending {
        Ending::Passed => "passed".to_string(),
        Ending::Panicked(payload) => format!("panicked: {}", panic_text(payload.as_ref())),
        Ending::Returned(message) => format!("returned an error: {message}"),
        Ending::Setup(error) => format!("setup failed: {error}"),
        Ending::Teardown(problems) => format!("passed, but its teardown failed: {problems}"),
        Ending::TimedOut(limit) => format!("timed out after {limit:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    fn config(name: &'static str, timeout: Option<Duration>) -> TestConfig {
        TestConfig {
            name,
            timeout,
            flavor: Flavor::CurrentThread,
            start_paused: false,
            services: &[],
            case: false,
            should_panic: false,
        }
    }

    fn panic_text(payload: Box<dyn Any + Send>) -> String {
        match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(p) => p
                .downcast::<&str>()
                .map(|s| s.to_string())
                .unwrap_or_default(),
        }
    }

    fn is_reserved(port: u16) -> bool {
        ports::live_reservations()
            .unwrap()
            .iter()
            .any(|r| r.port == port)
    }

    /// What a test body saw, recorded for assertions after the run.
    #[derive(Default)]
    struct Seen {
        port: Mutex<Option<u16>>,
        torn_down: AtomicBool,
    }

    /// Setup shared by the cases: one reserved port, one deferred action.
    fn acquire(ctx: &TestContext, seen: &Arc<Seen>) -> Result<(), Error> {
        *seen.port.lock().unwrap() = Some(ctx.reserve_port("api")?);
        let seen = seen.clone();
        ctx.defer("mark", async move {
            seen.torn_down.store(true, Ordering::SeqCst)
        });
        Ok(())
    }

    fn assert_released(seen: &Seen) {
        assert!(
            seen.torn_down.load(Ordering::SeqCst),
            "deferred action did not run"
        );
        let port = seen.port.lock().unwrap().expect("port was reserved");
        assert!(
            !is_reserved(port),
            "port {port} still reserved after teardown"
        );
    }

    #[test]
    fn a_panicking_body_is_torn_down_and_the_panic_re_raised() {
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            run_async(config("unit::panics", None), |ctx| async move {
                acquire(&ctx, &s)?;
                panic!("original message");
            })
        }));
        assert_eq!(panic_text(result.unwrap_err()), "original message");
        assert_released(&seen);
    }

    #[test]
    fn a_timeout_names_test_limit_and_ports_and_tears_down() {
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let started = Instant::now();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            run_async(
                config("unit::times_out", Some(Duration::from_millis(100))),
                |ctx| async move {
                    acquire(&ctx, &s)?;
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(Ok(()))
                },
            )
        }));
        assert!(started.elapsed() < Duration::from_secs(5));
        let text = panic_text(result.unwrap_err());
        let port = seen.port.lock().unwrap().unwrap();
        assert!(
            text.contains("unit::times_out timed out after 100ms"),
            "{text}"
        );
        assert!(text.contains(&format!("api={port}")), "{text}");
        assert_released(&seen);
    }

    #[test]
    fn an_error_return_fails_with_its_debug_text() {
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            run_async(config("unit::errs", None), |ctx| async move {
                acquire(&ctx, &s)?;
                Ok(Err::<(), _>("bad thing").into_outcome())
            })
        }));
        let text = panic_text(result.unwrap_err());
        assert!(
            text.contains("unit::errs returned an error: \"bad thing\""),
            "{text}"
        );
        assert_released(&seen);
    }

    #[test]
    fn a_setup_error_names_the_cause() {
        let result = panic::catch_unwind(|| {
            run_async(config("unit::setup", None), |_ctx| async move {
                Err(Error::Inject {
                    param: "db".into(),
                    source: Box::new(Error::fixture("connecting", "refused")),
                })
            })
        });
        let text = panic_text(result.unwrap_err());
        assert!(
            text.contains("setup failed: cannot inject parameter `db`: connecting: refused"),
            "{text}"
        );
    }

    #[test]
    fn start_paused_does_not_fire_the_real_time_deadline() {
        let mut cfg = config("unit::paused", Some(Duration::from_secs(5)));
        cfg.start_paused = true;
        let started = Instant::now();
        run_async(cfg, |_ctx| async move {
            // An hour of paused time passes at once; a tokio-time deadline would fire.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Ok(()))
        });
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_sync_body_past_its_timeout_fails_after_teardown() {
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            run_sync_with_timeout(
                config("unit::sync_times_out", Some(Duration::from_millis(100))),
                |ctx| async move { acquire(&ctx, &s) },
                |()| {
                    std::thread::sleep(Duration::from_secs(2));
                    Ok(())
                },
            )
        }));
        let text = panic_text(result.unwrap_err());
        assert!(text.contains("timed out after 100ms"), "{text}");
        assert_released(&seen);
    }

    #[test]
    fn an_async_body_blocking_its_thread_still_times_out_with_teardown() {
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let started = Instant::now();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            run_async_with_timeout(
                config("unit::blocks", Some(Duration::from_millis(100))),
                |ctx| async move {
                    acquire(&ctx, &s)?;
                    // Blocks the runtime's thread: its own deadline cannot fire.
                    std::thread::sleep(Duration::from_secs(20));
                    Ok(Ok(()))
                },
            )
        }));
        let text = panic_text(result.unwrap_err());
        assert!(
            text.contains("unit::blocks timed out after 100ms"),
            "{text}"
        );
        // (A bound far below the body's 20 s: not a latency figure.)
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "waited for the body"
        );
        assert_released(&seen);
    }

    #[test]
    fn a_slow_teardown_after_a_timely_body_is_no_timeout() {
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        // The body ends at once; teardown takes longer than the limit.
        run_async_with_timeout(
            config("unit::slow_teardown", Some(Duration::from_millis(100))),
            |ctx| async move {
                acquire(&ctx, &s)?;
                ctx.defer("slow", tokio::time::sleep(Duration::from_millis(600)));
                Ok(Ok(()))
            },
        );
        assert_released(&seen);
    }

    #[test]
    fn a_teardown_that_fails_fails_a_passing_test() {
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            run_async(config("unit::teardown_fails", None), |ctx| async move {
                let c = ctx.clone();
                ctx.defer("stuck", async move {
                    c.teardown_failed("process `x` (pid 1) did not exit");
                });
                Ok(Ok(()))
            })
        }));
        let text = panic_text(result.unwrap_err());
        assert!(
            text.contains("unit::teardown_fails passed, but its teardown failed:\nprocess `x` (pid 1) did not exit"),
            "{text}"
        );
    }

    #[test]
    fn a_hanging_sync_setup_is_under_the_timeout_too() {
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let started = Instant::now();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            run_sync_with_timeout(
                config("unit::setup_hangs", Some(Duration::from_millis(100))),
                |ctx| async move {
                    acquire(&ctx, &s)?;
                    tokio::time::sleep(Duration::from_secs(20)).await;
                    Ok(())
                },
                |()| Ok(()),
            )
        }));
        let text = panic_text(result.unwrap_err());
        assert!(text.contains("timed out after 100ms"), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "waited for the setup"
        );
        assert_released(&seen);
    }

    #[test]
    fn a_sync_panic_is_re_raised_after_teardown() {
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            run_sync(
                config("unit::sync_panics", None),
                |ctx| async move { acquire(&ctx, &s) },
                |()| -> Result<(), String> { panic!("sync boom") },
            )
        }));
        assert_eq!(panic_text(result.unwrap_err()), "sync boom");
        assert_released(&seen);
    }

    /// Two cases of one function, each on a thread named the way libtest
    /// names a case: each is a test of its own.
    #[test]
    fn each_case_is_named_after_its_case_with_its_own_dir_and_namespace() {
        let run_case = |thread: &str| {
            let seen = Arc::new(Mutex::new(None));
            let s = seen.clone();
            std::thread::Builder::new()
                .name(thread.to_string())
                .spawn(move || {
                    let cfg = TestConfig {
                        case: true,
                        should_panic: false,
                        ..config("suite::matrix", Some(Duration::from_secs(30)))
                    };
                    run_async_with_timeout(cfg, move |ctx| async move {
                        let facts = (
                            ctx.name().to_string(),
                            ctx.namespace().to_string(),
                            ctx.output_dir().to_path_buf(),
                        );
                        *s.lock().unwrap() = Some(facts);
                        Ok(Ok(()))
                    })
                })
                .unwrap()
                .join()
                .unwrap();
            let facts = seen.lock().unwrap().take();
            facts.expect("the body ran")
        };
        let (name_1, ns_1, dir_1) = run_case("matrix::case_1_etcd_nats");
        let (name_2, ns_2, dir_2) = run_case("matrix::case_2_file_tcp");
        assert_eq!(name_1, "suite::matrix::case_1_etcd_nats");
        assert_eq!(name_2, "suite::matrix::case_2_file_tcp");
        assert!(ns_1.starts_with("matrix-case-1-etcd-nats-"), "{ns_1}");
        assert!(ns_2.starts_with("matrix-case-2-file-tcp-"), "{ns_2}");
        assert!(dir_1
            .parent()
            .unwrap()
            .ends_with("suite.matrix.case_1_etcd_nats"));
        assert!(dir_2
            .parent()
            .unwrap()
            .ends_with("suite.matrix.case_2_file_tcp"));
    }

    #[test]
    fn a_failing_case_is_named_in_its_verdict() {
        let result = std::thread::Builder::new()
            .name("matrix::case_3".to_string())
            .spawn(|| {
                let cfg = TestConfig {
                    case: true,
                    should_panic: false,
                    ..config("suite::matrix", None)
                };
                run_async(cfg, |_ctx| async move { Ok(Err("no".to_string())) })
            })
            .unwrap()
            .join();
        let text = panic_text(result.unwrap_err());
        assert!(
            text.starts_with("[dynamo-test] suite::matrix::case_3 returned an error: no"),
            "{text}"
        );
    }

    #[test]
    fn multi_thread_flavor_runs_on_workers() {
        let cfg = TestConfig {
            flavor: Flavor::MultiThread {
                worker_threads: Some(2),
            },
            ..config("unit::multi", None)
        };
        run_async(cfg, |_ctx| async move {
            let handle = tokio::runtime::Handle::current();
            assert_eq!(handle.metrics().num_workers(), 2);
            Ok(Ok(()))
        });
    }
}
