//! The failure report: one file, `failure.md`, in a failing test's output
//! directory, from which a person can act: the verdict, the port table,
//! every process (command, pid, how it ended, log), the services (where,
//! whose, healthy at the end), the test's etcd keys and the teardown steps.
//!
//! What teardown destroys or buries (the test's etcd keys, private
//! instances, the log lines before the stops' shutdown chatter) is
//! observed just before it ([`observe`]), and a first report written then,
//! so that a teardown that hangs still leaves one; the final report is
//! written after it ([`write`]).
//! Under CI (`CI` set) a copy also goes to `DYNAMO_TEST_ARTIFACTS_DIR`,
//! for the CI system to upload. Nothing is written for a passing test.

mod render;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::context::{log, TestContext};
use crate::env::{self, Lookup};
use crate::inject::{observe_services, ServiceFacts};
use crate::sys::real_time;
use render::{ProcessFacts, ReportFacts, Services};

/// The report's file name in the test's output directory.
pub(crate) const REPORT_FILE: &str = "failure.md";

/// Where CI copies of reports go (with `CI` set).
pub(crate) const ENV_ARTIFACTS_DIR: &str = "DYNAMO_TEST_ARTIFACTS_DIR";

/// Log lines of each process in the report.
const REPORT_TAIL_LINES: usize = 30;

/// How long observing the services may take: a paused or dead service
/// must not hold a failing test's teardown for long.
const OBSERVE_LIMIT: Duration = Duration::from_secs(6);

/// What was observed before teardown (a context slot; the first
/// observation wins: an abandoned body thread may observe again later,
/// after the supervisor's teardown).
#[derive(Default)]
struct Observed(OnceLock<Snapshot>);

struct Snapshot {
    /// `None` if the services did not answer within [`OBSERVE_LIMIT`].
    services: Option<Vec<ServiceFacts>>,
    /// The log tail of each process started by then, before teardown's
    /// stops add their shutdown lines.
    tails: Vec<String>,
}

/// Observes, for a failing test's report, what teardown will destroy or
/// bury: the services (their keys, their health) and the log tails. What
/// is worth a line in the test's output now (a service that died under the
/// test) is logged.
pub(crate) async fn observe(ctx: &TestContext) {
    let services = real_time::timeout(OBSERVE_LIMIT, observe_services(ctx)).await;
    let tails = ctx
        .processes()
        .iter()
        .map(|p| p.log_tail(REPORT_TAIL_LINES))
        .collect();
    for note in services.iter().flatten().filter_map(|s| s.note.as_ref()) {
        log(ctx.name(), note);
    }
    let _ = ctx.slot::<Observed>().0.set(Snapshot { services, tails });
}

/// What a failed test does just before teardown, while it still holds
/// what teardown destroys: [`observe`], then (with a `verdict`) the first
/// report, so that a teardown that hangs still leaves one.
pub(crate) async fn before_teardown(ctx: &TestContext, verdict: Option<&str>) {
    observe(ctx).await;
    if let Some(verdict) = verdict {
        write(ctx, verdict, Stage::BeforeTeardown);
    }
}

/// When in the test's end a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Before teardown: a report exists even if teardown hangs.
    BeforeTeardown,
    /// After teardown: the final report (and its CI copy).
    Final,
}

/// Writes the report of a failed test and returns its path; a report that
/// cannot be written is logged, never fatal: the test's own failure is
/// what matters.
pub(crate) fn write(ctx: &TestContext, verdict: &str, stage: Stage) -> Option<PathBuf> {
    let facts = gather(ctx, verdict, stage);
    let path = ctx.output_dir().join(REPORT_FILE);
    if let Err(e) = std::fs::write(&path, render::render(&facts)) {
        log(
            ctx.name(),
            &format!("could not write the failure report {}: {e}", path.display()),
        );
        return None;
    }
    if stage == Stage::Final {
        if let Err(e) = copy_for_ci(&env::process_env, ctx, &path) {
            log(ctx.name(), &e);
        }
    }
    Some(path)
}

fn gather(ctx: &TestContext, verdict: &str, stage: Stage) -> ReportFacts {
    let snapshot = ctx.slot::<Observed>();
    let snapshot = snapshot.0.get();
    let processes = ctx
        .processes()
        .iter()
        .enumerate()
        .map(|(i, p)| ProcessFacts {
            name: p.name().to_string(),
            pid: p.pid(),
            command: p.command_line(),
            ended: match p.exit_status() {
                Some(status) => status.to_string(),
                None => "still running when the report was written".to_string(),
            },
            log: p.log_path().to_path_buf(),
            tail: snapshot
                .and_then(|s| s.tails.get(i).cloned())
                .unwrap_or_else(|| p.log_tail(REPORT_TAIL_LINES)),
        })
        .collect();
    let services = match snapshot {
        None => Services::NotObserved,
        Some(Snapshot { services: None, .. }) => Services::NoAnswer(OBSERVE_LIMIT),
        Some(Snapshot {
            services: Some(s), ..
        }) => Services::Observed(s.clone()),
    };
    ReportFacts {
        name: ctx.name().to_string(),
        verdict: verdict.to_string(),
        output_dir: ctx.output_dir().to_path_buf(),
        ports: ctx.ports(),
        processes,
        services,
        teardown: ctx.teardown_steps(),
        teardown_done: stage == Stage::Final,
    }
}

/// With `CI` set and [`ENV_ARTIFACTS_DIR`] naming a directory: a copy of
/// the report there, named after the test and its run. The error says
/// what went wrong, naming the variable.
fn copy_for_ci(vars: Lookup, ctx: &TestContext, report: &Path) -> Result<(), String> {
    // CI systems set CI=true (some CI=1); `false` or `0` is not CI.
    let ci = env::var(vars, "CI")
        .ok()
        .flatten()
        .is_some_and(|v| v != "false" && v != "0");
    let dir = env::absolute_path(vars, ENV_ARTIFACTS_DIR).map_err(|e| e.to_string())?;
    let (true, Some(dir)) = (ci, dir) else {
        return Ok(());
    };
    let run = ctx
        .output_dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file: String = ctx
        .name()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let copy = dir.join(format!("{file}-{run}.md"));
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::copy(report, &copy).map(drop))
        .map_err(|e| {
            format!(
                "could not copy the failure report to {} ({ENV_ARTIFACTS_DIR}): {e}",
                copy.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::tests::vars;

    #[test]
    fn a_ci_copy_needs_ci_and_the_directory() {
        let ctx = TestContext::new("unit::report::ci_copy").unwrap();
        let report = ctx.output_dir().join(REPORT_FILE);
        std::fs::write(&report, "# report").unwrap();
        let dir = ctx.output_dir().join("artifacts");
        let dir_s = dir.to_str().unwrap();
        copy_for_ci(&vars(&[(ENV_ARTIFACTS_DIR, dir_s)]), &ctx, &report).unwrap();
        assert!(!dir.exists(), "no copy without CI");
        copy_for_ci(
            &vars(&[("CI", "true"), (ENV_ARTIFACTS_DIR, dir_s)]),
            &ctx,
            &report,
        )
        .unwrap();
        let copies: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(copies.len(), 1);
        let err = copy_for_ci(
            &vars(&[("CI", "1"), (ENV_ARTIFACTS_DIR, "rel")]),
            &ctx,
            &report,
        )
        .unwrap_err();
        assert!(
            err.contains(ENV_ARTIFACTS_DIR) && err.contains("rel"),
            "{err}"
        );
    }
}
