//! The failure report: a failing test (error, panic, timeout, setup
//! failure, a failed teardown) leaves `failure.md` in its output directory
//! with every section, and names it at the end of its failure message; a
//! passing test writes none. Each test runs a test the way `#[dynamo_test]`
//! expands (through the runtime's runner) and catches its failure.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dynamo_test::__private::{
    run_async, run_async_with_timeout, run_sync, Flavor, Mode, ServiceKind, ServiceRequest,
    TestConfig,
};
use dynamo_test::{Error, Etcd, Inject, TestContext};

static ETCD: [ServiceRequest; 1] = [ServiceRequest {
    kind: ServiceKind::Etcd,
    mode: Mode::Shared,
    jetstream: true,
}];

fn config(
    name: &'static str,
    timeout: Option<Duration>,
    services: &'static [ServiceRequest],
) -> TestConfig {
    TestConfig {
        name,
        timeout,
        flavor: Flavor::CurrentThread,
        start_paused: false,
        services,
        case: false,
        should_panic: false,
    }
}

/// What a run left: its failure message (if it failed) and its output dir.
struct Run {
    message: Option<String>,
    output_dir: PathBuf,
}

impl Run {
    fn report(&self) -> String {
        let path = self.output_dir.join("failure.md");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// Runs `body` as one test; the body's first act records its output dir.
fn run<F, Fut>(config: TestConfig, body: F) -> Run
where
    F: FnOnce(TestContext) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Result<(), String>, Error>>,
{
    run_with(config, |config, body| run_async(config, body), body)
}

/// Like [`run`], through a runner of the caller's choice.
fn run_with<F, Fut>(
    config: TestConfig,
    runner: impl FnOnce(TestConfig, Box<dyn FnOnce(TestContext) -> Fut + Send>),
    body: F,
) -> Run
where
    F: FnOnce(TestContext) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Result<(), String>, Error>>,
{
    let seen: Arc<Mutex<Option<PathBuf>>> = Arc::default();
    let slot = seen.clone();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        runner(
            config,
            Box::new(move |ctx: TestContext| {
                *slot.lock().unwrap() = Some(ctx.output_dir().to_path_buf());
                body(ctx)
            }),
        )
    }));
    let message = outcome.err().map(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    });
    let output_dir = seen.lock().unwrap().clone().expect("the body ran");
    Run {
        message,
        output_dir,
    }
}

/// Every section a report has, whatever the failure.
fn assert_sections(report: &str) {
    for section in [
        "# Failure report: `",
        "**Verdict:**",
        "## Ports",
        "## Processes",
        "## Services",
        "## Teardown",
    ] {
        assert!(report.contains(section), "{section:?} in:\n{report}");
    }
    assert!(
        !report.contains("not finished when this was written"),
        "the final report replaced the first one:\n{report}"
    );
}

/// The failure message ends with the report's path (not for a panic,
/// which is re-raised as it was).
fn assert_named(run: &Run) {
    let message = run.message.as_deref().expect("the test failed");
    let path = run.output_dir.join("failure.md");
    assert!(
        message.ends_with(&format!("failure report: {}", path.display())),
        "{message}"
    );
}

/// A child whose log says something, an etcd key under the test's prefix
/// and a reserved port: what the report must show.
async fn leave_traces(ctx: &TestContext) -> Result<(), Error> {
    ctx.reserve_port("api")?;
    ctx.process("child", "sh")
        .args(["-c", "echo hello from the child; exec sleep 1000"])
        .ready_log("hello from the child")
        .start()
        .await?;
    let etcd = Etcd::inject(ctx, "etcd").await?;
    etcd.put(&etcd.key("left-behind"), "v").await?;
    Ok(())
}

#[test]
fn an_error_leaves_a_report_with_every_section() {
    let run = run(
        config("failure_report::error", None, &ETCD),
        |ctx| async move {
            leave_traces(&ctx).await?;
            Ok(Err("the body failed on purpose".to_string()))
        },
    );
    assert_named(&run);
    let report = run.report();
    assert_sections(&report);
    for expected in [
        "# Failure report: `failure_report::error`",
        "returned an error: the body failed on purpose",
        "## Ports",
        "| api |",
        "## Processes",
        "### `child` (pid ",
        "- command: `sh -c 'echo hello from the child; exec sleep 1000'`",
        "- ended: signal: 15 (SIGTERM)",
        "child.log`",
        "last lines of its log:\n\n```text\nhello from the child\n```",
        "## Services",
        "### etcd",
        "- healthy at the end",
        "keys under the test's prefix",
        "left-behind`",
        "## Teardown",
        "| stop process `child` |",
        "| ok |",
    ] {
        assert!(report.contains(expected), "{expected:?} in:\n{report}");
    }
}

#[test]
fn a_panic_leaves_a_report_and_keeps_its_message() {
    let run = run(
        config("failure_report::panic", None, &[]),
        |ctx| async move {
            ctx.reserve_port("api")?;
            panic!("boom on purpose");
        },
    );
    assert_eq!(run.message.as_deref(), Some("boom on purpose"));
    let report = run.report();
    assert_sections(&report);
    assert!(report.contains("panicked: boom on purpose"), "{report}");
    assert!(report.contains("| api |"), "{report}");
}

#[test]
fn a_timeout_leaves_a_report() {
    // The runtime's own deadline ends a body that awaits forever.
    let limit = Some(Duration::from_secs(2));
    let run = run(
        config("failure_report::timeout", limit, &[]),
        |ctx| async move {
            ctx.process("sleeper", "sleep").arg("1000").start().await?;
            std::future::pending::<()>().await;
            Ok(Ok(()))
        },
    );
    assert_named(&run);
    let report = run.report();
    assert_sections(&report);
    assert!(report.contains("timed out after 2s"), "{report}");
    assert!(report.contains("- command: `sleep 1000`"), "{report}");
}

#[test]
fn a_body_that_blocks_its_thread_past_the_limit_leaves_a_report() {
    // The supervisor's path: the body's thread is stuck, the test's thread
    // observes, tears down and reports. The process and the key were
    // there before the block.
    let limit = Some(Duration::from_secs(2));
    let run = run_with(
        config("failure_report::blocked", limit, &ETCD),
        run_async_with_timeout,
        |ctx| async move {
            leave_traces(&ctx).await?;
            std::thread::sleep(Duration::from_secs(600));
            Ok(Ok(()))
        },
    );
    assert_named(&run);
    let report = run.report();
    assert_sections(&report);
    assert!(report.contains("timed out after 2s"), "{report}");
    assert!(report.contains("hello from the child"), "{report}");
    assert!(
        report.contains("left-behind`"),
        "the keys, seen before teardown: {report}"
    );
}

#[test]
fn a_plain_test_that_panics_leaves_a_report() {
    let seen: Arc<Mutex<Option<PathBuf>>> = Arc::default();
    let slot = seen.clone();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        run_sync(
            config("failure_report::sync_panic", None, &[]),
            move |ctx: TestContext| async move {
                *slot.lock().unwrap() = Some(ctx.output_dir().to_path_buf());
                ctx.reserve_port("api")
            },
            |_port| panic!("a plain body panics on purpose"),
        )
    }));
    assert!(outcome.is_err());
    let dir = seen.lock().unwrap().clone().unwrap();
    let report = std::fs::read_to_string(dir.join("failure.md")).unwrap();
    assert_sections(&report);
    assert!(
        report.contains("panicked: a plain body panics on purpose"),
        "{report}"
    );
}

#[test]
fn a_should_panic_test_that_panics_writes_no_report() {
    let mut config = config("failure_report::should_panic", None, &[]);
    config.should_panic = true;
    let run = run(config, |_ctx| async move { panic!("expected, on purpose") });
    assert_eq!(run.message.as_deref(), Some("expected, on purpose"));
    assert!(!run.output_dir.join("failure.md").exists());
}

#[test]
fn a_setup_failure_leaves_a_report() {
    let run = run(
        config("failure_report::setup", None, &[]),
        |_ctx| async move {
            Err(Error::Service(
                "the fixture could not start, on purpose".into(),
            ))
        },
    );
    assert_named(&run);
    let report = run.report();
    assert_sections(&report);
    assert!(
        report.contains("setup failed: the fixture could not start, on purpose"),
        "{report}"
    );
}

#[test]
fn a_failed_teardown_step_is_in_the_report() {
    let run = run(
        config("failure_report::teardown", None, &[]),
        |ctx| async move {
            let handle = ctx.clone();
            ctx.defer("check the leftovers", async move {
                handle.teardown_failed("a leftover was found, on purpose");
            });
            Ok(Ok(()))
        },
    );
    let report = run.report();
    assert!(
        report.contains("passed, but its teardown failed"),
        "{report}"
    );
    assert!(
        report.contains("| check the leftovers |")
            && report.contains("a leftover was found, on purpose |"),
        "{report}"
    );
}

#[test]
fn a_teardown_step_that_panics_fails_the_test_and_the_rest_still_runs() {
    let later_ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = later_ran.clone();
    let run = run(
        config("failure_report::step_panics", None, &[]),
        |ctx| async move {
            // Registered first, so run last: after the panicking step.
            ctx.defer("the last step", async move {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            ctx.defer("a step that panics", async {
                panic!("the step panics on purpose")
            });
            Ok(Ok(()))
        },
    );
    assert!(later_ran.load(std::sync::atomic::Ordering::SeqCst));
    assert_named(&run);
    let report = run.report();
    assert!(
        report.contains("teardown step `a step that panics` panicked: the step panics on purpose"),
        "{report}"
    );
    assert!(report.contains("| the last step |"), "{report}");
}

#[test]
fn a_passing_test_writes_no_report() {
    let run = run(
        config("failure_report::passes", None, &[]),
        |ctx| async move {
            ctx.reserve_port("api")?;
            Ok(Ok(()))
        },
    );
    assert_eq!(run.message, None);
    assert!(!run.output_dir.join("failure.md").exists());
}

#[test]
fn under_ci_a_copy_goes_to_the_artifacts_dir() {
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let artifacts =
        std::env::temp_dir().join(format!("dt-artifacts-{}-{unique}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scenario"))
        .arg("error")
        .env("CI", "true")
        .env("DYNAMO_TEST_ARTIFACTS_DIR", &artifacts)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(101));
    let copies: Vec<PathBuf> = std::fs::read_dir(&artifacts)
        .unwrap_or_else(|e| panic!("{}: {e}", artifacts.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let copy = std::fs::read_to_string(&copies[0]).unwrap();
    assert!(
        copy.contains("# Failure report: `scenario::family`"),
        "{copy}"
    );
    assert!(
        file_name(&copies[0]).starts_with("scenario__family-"),
        "{copies:?}"
    );
    std::fs::remove_dir_all(&artifacts).unwrap();
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// A test another runner ran (the pytest plugin): `admin::end_elsewhere`
/// writes the report of a failed one before and after teardown, none for
/// a passed one, and tears down either way.
#[test]
fn a_test_run_elsewhere_gets_the_same_report() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let failed = TestContext::new("elsewhere::fails").unwrap();
        let port = failed.reserve_port("api").unwrap();
        let ended = dynamo_test::admin::end_elsewhere(&failed, Some("failed: assert 1 == 2")).await;
        assert!(ended.teardown_problems.is_empty(), "{ended:?}");
        let report = std::fs::read_to_string(ended.report.expect("a report")).unwrap();
        assert!(report.contains("failed: assert 1 == 2"), "{report}");
        assert!(report.contains(&format!("| api | {port} |")), "{report}");
        // Torn down: the port is free for anyone again.
        let held = dynamo_test::admin::live_reservations().unwrap();
        assert!(held.iter().all(|r| r.port != port));

        let passed = TestContext::new("elsewhere::passes").unwrap();
        passed.reserve_port("api").unwrap();
        let ended = dynamo_test::admin::end_elsewhere(&passed, None).await;
        assert_eq!(ended, dynamo_test::admin::Ended::default());
        assert!(!passed.output_dir().join("failure.md").exists());
    });
}
