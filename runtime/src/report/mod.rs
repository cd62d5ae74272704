//! The failure report: one file, `failure.md`, in a failing test's output
//! directory, from which a person can act: the verdict, the port table,
//! every process (command, pid, how it ended, log), the services (where,
//! whose, healthy at the end), the test's etcd keys and the teardown steps.
//!
//! What teardown destroys (the test's etcd keys, private instances) is
//! observed just before it ([`observe`]); the rest after it ([`write`]).
//! Under CI (`CI` set) a copy also goes to `DYNAMO_TEST_ARTIFACTS_DIR`,
//! for the CI system to upload. Nothing is written for a passing test.

mod render;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::context::{log, TestContext};
use crate::env::{self, Lookup};
use crate::inject::{observe_services, ServiceFacts};
use crate::sys::sync::lock;
use render::{ProcessFacts, ReportFacts};

/// The report's file name in the test's output directory.
pub(crate) const REPORT_FILE: &str = "failure.md";

/// Where CI copies of reports go (with `CI` set).
pub(crate) const ENV_ARTIFACTS_DIR: &str = "DYNAMO_TEST_ARTIFACTS_DIR";

/// Log lines of each process in the report.
const TAIL_LINES: usize = 30;

/// What was observed before teardown (a context slot).
#[derive(Default)]
struct Observed(Mutex<Option<Vec<ServiceFacts>>>);

/// Observes what teardown will destroy, for a failing test's report.
pub(crate) async fn observe(ctx: &TestContext) {
    let facts = observe_services(ctx).await;
    *lock(&ctx.slot::<Observed>().0) = Some(facts);
}

/// Writes the report of a failed test (after its teardown) and returns its
/// path; a report that cannot be written is logged, never fatal: the
/// test's own failure is what matters.
pub(crate) fn write(ctx: &TestContext, verdict: &str) -> Option<PathBuf> {
    let facts = gather(ctx, verdict);
    let path = ctx.output_dir().join(REPORT_FILE);
    let text = render::render(&facts);
    if let Err(e) = std::fs::write(&path, &text) {
        log(
            ctx.name(),
            &format!("could not write the failure report {}: {e}", path.display()),
        );
        return None;
    }
    if let Err(e) = copy_for_ci(&env::process_env, ctx, &path) {
        log(ctx.name(), &e);
    }
    Some(path)
}

fn gather(ctx: &TestContext, verdict: &str) -> ReportFacts {
    let processes = ctx
        .processes()
        .iter()
        .map(|p| ProcessFacts {
            name: p.name().to_string(),
            pid: p.pid(),
            command: p.command_line(),
            ended: match p.exit_status() {
                Some(status) => status.to_string(),
                None => "still running when the report was written".to_string(),
            },
            log: p.log_path().to_path_buf(),
            tail: p.log_tail(TAIL_LINES),
        })
        .collect();
    ReportFacts {
        name: ctx.name().to_string(),
        verdict: verdict.to_string(),
        output_dir: ctx.output_dir().to_path_buf(),
        ports: ctx.ports(),
        processes,
        services: lock(&ctx.slot::<Observed>().0).clone(),
        teardown: ctx.teardown_steps(),
    }
}

/// With `CI` set and [`ENV_ARTIFACTS_DIR`] naming a directory: a copy of
/// the report there, named after the test and its run. The error says
/// what went wrong, naming the variable.
fn copy_for_ci(vars: Lookup, ctx: &TestContext, report: &Path) -> Result<(), String> {
    let ci = env::var(vars, "CI").ok().flatten().is_some();
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
