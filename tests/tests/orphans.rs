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

/// A test in a container: its own PID namespace, where its pid (1 there)
/// and its children's tags mean something else than in ours. The sweep
/// must neither judge its owner dead nor signal its family.
#[test]
fn the_sweep_leaves_an_owner_in_another_pid_namespace_alone() {
    if !orphans::is_root() {
        eprintln!("skipped: `unshare --pid --mount-proc` needs root (CI runs as root)");
        return;
    }
    // A real `dynamo-test clean` (of a version without this rule) would stop it.
    let _one_clean_at_a_time = dynamo_test_suite::exclusive("cli-clean");
    let binary = Path::new(env!("CARGO_BIN_EXE_scenario"));
    let mut s = orphans::start_in_pid_namespace(binary, "hang").unwrap();
    let family = orphans::host_pids(s.process.id(), &s.family);
    let family = family.unwrap_or_else(|| {
        orphans::signal_group(&s, libc::SIGKILL);
        panic!("the family {:?} is not found from here", s.family)
    });
    use dynamo_test::admin::{self, procfs, OwnerStatus, OwnerTag};
    let tag = procfs::environ_var(family[0], admin::ENV_OWNER).expect("tagged");
    let owner = OwnerTag::parse(&tag).expect("a tag of this version");
    // Its owner is pid 1 of its namespace: here, some other process.
    assert_eq!(owner.pid, 1, "{tag}");
    assert!(
        matches!(owner.status(), OwnerStatus::OtherNamespace(_)),
        "{tag}"
    );

    let sweep = admin::find_orphans().unwrap();
    let seen: Vec<u32> = sweep
        .orphans
        .iter()
        .map(|o| o.pid)
        .chain(sweep.left_alone.iter().map(|(o, _)| o.pid))
        .collect();
    let found: Vec<&u32> = family.iter().filter(|p| seen.contains(p)).collect();
    // Even a stop asked for by hand is refused: it lives in another namespace.
    let forged = admin::Orphan {
        pid: family[0],
        start_time: admin::start_time(family[0]).unwrap(),
        name: "family".into(),
        owner,
        command: String::new(),
    };
    let refused = admin::stop_orphan(&forged);
    std::thread::sleep(Duration::from_millis(100));
    let alive: Vec<bool> = family.iter().map(|&p| orphans::alive(p)).collect();

    orphans::signal_group(&s, libc::SIGKILL);
    s.process.wait().unwrap();
    assert_eq!(found, Vec::<&u32>::new(), "the sweep listed {sweep:?}");
    assert!(
        matches!(refused, Err(admin::Unreachable::OtherNamespace { .. })),
        "{refused:?}"
    );
    assert_eq!(alive, [true, true], "the family was signalled");
    // The namespace ended with its first process: nothing survives.
    assert_eq!(survivors_after(&family, LIMIT), Vec::<u32>::new());
}
