//! Descendants that leave their child's process group (a new session, a
//! double-forked daemon, a process group of their own) are still stopped:
//! at the teardown of a passing test, of a panicking one, and when the
//! test process is SIGKILLed (the `escapee` binary is that test process).

use std::path::Path;
use std::time::Duration;

use dynamo_test::admin::ProcStat;
use dynamo_test_suite::orphans::{self, survivors_after, Scenario};

/// Long enough for a loaded machine; the sweep itself takes milliseconds.
const LIMIT: Duration = Duration::from_secs(10);

const KINDS: [&str; 4] = ["setsid", "daemon", "pgroup", "leader-exits"];

fn scenario(ending: &str, kind: &str) -> Scenario {
    let binary = Path::new(env!("CARGO_BIN_EXE_escapee"));
    orphans::start_with_args(binary, &[ending, kind]).unwrap()
}

/// Whether the descendant runs, in another process group than the
/// child's. (The scenario prints the pids only once it has left.)
fn escaped(s: &Scenario) -> bool {
    // The child leads its group: the group's id is its pid (the child may
    // have exited already: `leader-exits`).
    let (child, descendant) = (s.family[0], s.family[1]);
    orphans::alive(descendant) && ProcStat::read(descendant).is_some_and(|st| st.pgrp != child)
}

fn ends_by_itself(ending: &str, expected_code: i32) {
    for kind in KINDS {
        let mut s = scenario(ending, kind);
        let (code, output) = s.finish();
        assert_eq!(code, Some(expected_code), "{kind}: {output}");
        // Teardown ran before the test process ended (SIGKILLed, they may
        // take a moment to be gone).
        assert_eq!(
            survivors_after(&s.family, LIMIT),
            Vec::<u32>::new(),
            "{kind}: {output}"
        );
        let named = format!("stopped outside its process group: pid {}", s.family[1]);
        assert!(output.contains(&named), "{kind}: {output}");
    }
}

#[test]
fn a_passing_test_stops_descendants_that_left_the_group() {
    ends_by_itself("pass", 0);
}

#[test]
fn a_panicking_test_stops_descendants_that_left_the_group() {
    ends_by_itself("panic", 101);
}

#[test]
fn a_sigkilled_test_process_takes_descendants_that_left_the_group_along() {
    for kind in KINDS {
        let mut s = scenario("hang", kind);
        let was_out = escaped(&s);
        s.process.kill().unwrap();
        s.process.wait().unwrap();
        let survivors = survivors_after(&s.family, LIMIT);
        assert!(was_out, "{kind}: the descendant had left the group");
        assert_eq!(survivors, Vec::<u32>::new(), "{kind}");
    }
}

/// `sh` whose descendant leaves the group with `setsid`; its log's first
/// line names the descendant's pid.
async fn with_escapee(
    ctx: &dynamo_test::TestContext,
    name: &str,
) -> (dynamo_test::ManagedProcess, u32) {
    let process = ctx
        .process(name, "sh")
        .args([
            "-c",
            "setsid sleep 1000 & echo \"escapee $!\"; exec sleep 600",
        ])
        .start()
        .await
        .unwrap();
    let descendant = || -> Option<u32> {
        process
            .log_tail(5)
            .lines()
            .find_map(|l| l.strip_prefix("escapee ")?.parse().ok())
    };
    let group = |pid| ProcStat::read(pid).map(|st| st.pgrp);
    let found = dynamo_test_suite::eventually(LIMIT, || {
        descendant().is_some_and(|d| group(d).is_some() && group(d) != group(process.pid()))
    });
    assert!(found, "no escapee in {}", process.log_tail(5));
    let pid = descendant().unwrap();
    (process, pid)
}

#[dynamo_test::dynamo_test(timeout = "60s")]
async fn each_stop_stops_only_its_own_descendants(ctx: &dynamo_test::TestContext) {
    let (first, first_escapee) = with_escapee(ctx, "first").await;
    let (second, second_escapee) = with_escapee(ctx, "second").await;
    first.stop().await.unwrap();
    assert_eq!(survivors_after(&[first_escapee], LIMIT), Vec::<u32>::new());
    assert!(
        orphans::alive(second_escapee),
        "the other child's descendant is left alone"
    );
    second.stop().await.unwrap();
    assert_eq!(survivors_after(&[second_escapee], LIMIT), Vec::<u32>::new());
}

#[dynamo_test::dynamo_test(timeout = "60s")]
async fn a_child_that_exits_by_itself_keeps_its_escapee_in_reach(ctx: &dynamo_test::TestContext) {
    // The leader exits at once; its descendant runs on outside the group.
    let process = ctx
        .process("shortlived", "sh")
        .args(["-c", "setsid sleep 1000 & echo \"escapee $!\""])
        .start()
        .await
        .unwrap();
    assert!(process.wait().await.success());
    let escapee: u32 = process
        .log_tail(5)
        .lines()
        .find_map(|l| l.strip_prefix("escapee ")?.parse().ok())
        .unwrap();
    assert!(orphans::alive(escapee));
    process.stop().await.unwrap();
    assert_eq!(survivors_after(&[escapee], LIMIT), Vec::<u32>::new());
}
