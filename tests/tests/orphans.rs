//! No child outlives its test: a test process (the `scenario` binary)
//! starts a child and a grandchild, then is SIGKILLed, SIGTERMed as
//! cargo nextest does on timeout, panics, or times out. Within 2 s none of
//! the family may be alive.

use std::path::Path;
use std::time::Duration;

use dynamo_test_suite::orphans::{self, survivors_after, Scenario};

const LIMIT: Duration = Duration::from_secs(2);

fn scenario(mode: &str) -> Scenario {
    orphans::start(Path::new(env!("CARGO_BIN_EXE_scenario")), mode).unwrap()
}

#[test]
fn a_sigkilled_test_takes_its_children_and_grandchildren_along() {
    let mut s = scenario("hang");
    assert!(
        s.family.iter().all(|&p| orphans::alive(p)),
        "family runs before the kill"
    );
    s.process.kill().unwrap();
    s.process.wait().unwrap();
    assert_eq!(survivors_after(&s.family, LIMIT), Vec::<u32>::new());
}

#[test]
fn a_test_ended_like_nextest_ends_it_leaves_nothing() {
    // nextest on timeout: SIGTERM to the test's process group, grace, SIGKILL.
    let mut s = scenario("hang");
    orphans::signal_group(&s, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    orphans::signal_group(&s, libc::SIGKILL);
    s.process.wait().unwrap();
    assert_eq!(survivors_after(&s.family, LIMIT), Vec::<u32>::new());
}

/// A scenario that fails by itself: exit code 101 (libtest's failure),
/// the family gone before it exits, and its teardown and the family's log
/// tail (prefixed by the process name) in its output.
fn ends_by_itself_without_orphans(mode: &str) {
    let mut s = scenario(mode);
    let (code, output) = s.finish();
    assert_eq!(code, Some(101), "the test fails: {output}");
    // Teardown ran before the verdict: gone already.
    assert_eq!(
        survivors_after(&s.family, Duration::ZERO),
        Vec::<u32>::new()
    );
    assert!(
        output.contains("teardown: stop process `family`"),
        "{output}"
    );
    assert!(output.contains("logs of its processes"), "{output}");
    assert!(output.contains("[family] pids "), "{output}");
}

#[test]
fn a_panicking_test_tears_its_family_down() {
    ends_by_itself_without_orphans("panic");
}

#[test]
fn a_timed_out_test_tears_its_family_down() {
    ends_by_itself_without_orphans("timeout");
}

#[test]
fn a_test_returning_an_error_tears_its_family_down() {
    ends_by_itself_without_orphans("error");
}
