//! The failure report: a failing test (error, panic, timeout, setup
//! failure, a failed teardown) leaves `failure.md` in its output directory
//! with every section, and names it at the end of its failure message; a
//! passing test writes none. Each test runs a test the way `#[dynamo_test]`
//! expands (through the runtime's runner) and catches its failure.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dynamo_test::__private::{run_async, Flavor, Mode, ServiceKind, ServiceRequest, TestConfig};
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
    F: FnOnce(TestContext) -> Fut,
    Fut: std::future::Future<Output = Result<Result<(), String>, Error>>,
{
    let seen: Arc<Mutex<Option<PathBuf>>> = Arc::default();
    let slot = seen.clone();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        run_async(config, move |ctx: TestContext| {
            *slot.lock().unwrap() = Some(ctx.output_dir().to_path_buf());
            body(ctx)
        })
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
    let message = run.message.as_deref().expect("the test failed");
    let report_path = run.output_dir.join("failure.md");
    assert!(
        message.ends_with(&format!("failure report: {}", report_path.display())),
        "{message}"
    );
    let report = run.report();
    for expected in [
        "# Failure report: `failure_report::error`",
        "**Verdict:** returned an error: the body failed on purpose",
        "## Ports",
        "| api |",
        "## Processes",
        "### `child` (pid ",
        "- command: `sh -c 'echo hello from the child; exec sleep 1000'`",
        "- ended: signal: 15 (SIGTERM)",
        "child.log`",
        "hello from the child",
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
    assert!(run
        .report()
        .contains("**Verdict:** panicked: boom on purpose"));
}

#[test]
fn a_timeout_leaves_a_report() {
    let limit = Some(Duration::from_millis(300));
    let run = run(
        config("failure_report::timeout", limit, &[]),
        |ctx| async move {
            ctx.process("sleeper", "sleep").arg("1000").start().await?;
            std::future::pending::<()>().await;
            Ok(Ok(()))
        },
    );
    let report = run.report();
    assert!(
        report.contains("**Verdict:** timed out after 300ms"),
        "{report}"
    );
    assert!(report.contains("- command: `sleep 1000`"), "{report}");
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
    let report = run.report();
    assert!(
        report.contains("**Verdict:** setup failed: the fixture could not start, on purpose"),
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
    let artifacts = std::env::temp_dir().join(format!("dt-artifacts-{}", std::process::id()));
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
