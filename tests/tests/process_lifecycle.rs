//! A managed process's life on the real clock and with bounded cost: a
//! paused tokio clock does not cut a child's grace or a probe's waits, and
//! a thousand short processes leave no threads, zombies or watchdogs piled
//! up.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use dynamo_test::{dynamo_test, health, Port, TestContext};

const HTTP_CHILD: &str = env!("CARGO_BIN_EXE_http_child");

#[dynamo_test(start_paused = true, timeout = "120s")]
async fn on_a_paused_clock_a_graceful_child_gets_its_grace_and_probes_wait(
    ctx: &TestContext,
    api: Port,
) {
    // A server that binds only after 300 ms: the probe's backoff and its
    // attempts run on the real clock, and it passes.
    let server = ctx
        .process("api", HTTP_CHILD)
        .args([api.to_string(), "300".to_string()])
        .ready(health::http(api.url("/")))
        .start()
        .await
        .unwrap();
    assert_eq!(server.exit_status(), None);
    // A child that takes 300 ms to exit after SIGTERM: within its 3 s
    // grace, so it exits by itself, never SIGKILLed.
    let graceful = ctx
        .process("graceful", "sh")
        .args([
            "-c",
            "trap 'sleep 0.3; exit 0' TERM; echo up; while :; do sleep 0.05; done",
        ])
        .grace(Duration::from_secs(3))
        .ready_log("up") // the trap is set
        .start()
        .await
        .unwrap();
    let status = graceful.stop().await.unwrap();
    assert_eq!(status.signal(), None, "not killed: {status}");
    assert!(status.success(), "{status}");
}

/// Threads of this process, its children that are processes still
/// (running or zombies), and its open file descriptors.
fn threads_children_files() -> (usize, usize, usize) {
    let me = std::process::id();
    let count = |dir: &str| std::fs::read_dir(dir).map_or(0, |d| d.count());
    let children = dynamo_test::admin::procfs::pids()
        .into_iter()
        .filter(|&p| dynamo_test::admin::ProcStat::read(p).is_some_and(|s| s.ppid == me))
        .count();
    (count("/proc/self/task"), children, count("/proc/self/fd"))
}

#[dynamo_test(timeout = "600s")]
async fn a_thousand_short_processes_leave_nothing_piled_up(ctx: &TestContext) {
    let (threads_before, children_before, files_before) = threads_children_files();
    let (mut most_threads, mut most_children, mut most_files) = (0, 0, 0);
    for _ in 0..1000 {
        let process = ctx.process("short", "true").start().await.unwrap();
        assert!(process.wait().await.success());
        let (threads, children, files) = threads_children_files();
        most_threads = most_threads.max(threads);
        most_children = most_children.max(children);
        most_files = most_files.max(files);
    }
    // Other tests of this binary run in parallel threads and start
    // processes of their own: the bounds leave room for them, and are
    // far below one thread or process per short process.
    assert!(
        most_threads <= threads_before + 60,
        "threads: {threads_before} before, up to {most_threads} during"
    );
    assert!(
        most_children <= children_before + 40,
        "child processes: {children_before} before, up to {most_children} during"
    );
    assert!(
        most_files <= files_before + 200,
        "open files: {files_before} before, up to {most_files} during"
    );
}

#[dynamo_test(timeout = "120s")]
async fn a_paused_process_is_frozen_resumed_and_stopped_by_sigterm(ctx: &TestContext) {
    // It counts on its output; paused, the count stands still.
    let counter = ctx
        .process("counter", "sh")
        .args([
            "-c",
            "i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.02; done",
        ])
        .grace(Duration::from_secs(60))
        .ready_log("tick 3")
        .start()
        .await
        .unwrap();
    counter.pause().unwrap();
    let state = |pid| dynamo_test::admin::ProcStat::read(pid).map(|s| s.state);
    // Stopped (T); or, when the stop caught the shell between its vfork
    // and the child's exec, waiting on that stopped child (D): frozen
    // either way, and the loop cannot tick.
    let stopped = dynamo_test_suite::eventually(Duration::from_secs(45), || {
        matches!(state(counter.pid()), Some('T' | 'D'))
    });
    assert!(stopped, "state {:?}", state(counter.pid()));
    counter.resume().unwrap();
    assert!(
        dynamo_test_suite::eventually(Duration::from_secs(45), || state(counter.pid())
            != Some('T')),
        "resumed"
    );
    // Paused again, a stop still ends it by SIGTERM (it is resumed to act
    // on it), not by SIGKILL at the end of its 60 s grace.
    counter.pause().unwrap();
    let status = counter.stop().await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}");
    assert!(
        counter.pause().is_err(),
        "an exited process cannot be paused"
    );
}
