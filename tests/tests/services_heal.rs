//! A shared service the harness started heals: SIGKILLed from outside (an
//! OOM kill) while a test uses it, that test fails saying so, and the next
//! test of the same process gets it restarted. On moved ports, in a test
//! process of its own (the `heal_scenario` binary), so that no other
//! test's shared instance is touched.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use dynamo_test::admin::ServiceKind;
use dynamo_test::{dynamo_test, Port};
use dynamo_test_suite::plan_env;

/// A running `heal_scenario`: its first test has the service and waits.
struct Scenario {
    child: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
    /// What it printed so far.
    seen: String,
    /// The service pid its first test named (`using <pid>`).
    pid: i32,
}

impl Scenario {
    /// Starts it on the moved ports and reads up to its `using` line.
    fn start(kind: ServiceKind, client: &Port, second: &Port, out: &std::path::Path) -> Scenario {
        let mut child = Command::new(env!("CARGO_BIN_EXE_heal_scenario"))
            .arg(kind.name())
            .envs(plan_env(kind, client, second))
            .env("DYNAMO_TEST_OUTPUT_DIR", out)
            .env("DYNAMO_TEST_SERVICE_GRACE_MS", "300")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        let pid = loop {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "no pid: {seen}");
            seen.push_str(&line);
            if let Some(pid) = line.trim().strip_prefix("using ") {
                break pid.parse().unwrap();
            }
        };
        Scenario {
            child,
            stdout,
            seen,
            pid,
        }
    }

    /// Lets its first test go on; everything it printed, and its exit code.
    fn finish(mut self) -> (String, Option<i32>) {
        writeln!(self.child.stdin.take().unwrap(), "go").unwrap();
        std::io::Read::read_to_string(&mut self.stdout, &mut self.seen).unwrap();
        let out = self.child.wait_with_output().unwrap();
        let all = format!("{}{}", self.seen, String::from_utf8_lossy(&out.stderr));
        (all, out.status.code())
    }
}

fn heals(kind: ServiceKind, client: &Port, second: &Port, out: &std::path::Path) {
    let scenario = Scenario::start(kind, client, second, out);
    let (pid, seen) = (scenario.pid, scenario.seen.clone());
    let command = dynamo_test::admin::procfs::command_line(pid as u32).unwrap_or_default();
    assert!(
        command.contains(kind.program()),
        "pid {pid} is {command:?}: {seen}"
    );
    // The OOM killer, as far as the service can tell. It is ours: started
    // by the keeper of the scenario we started, on ports we reserved.
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    // A signal is delivered after kill returns: the test goes on once the
    // service is dead and its port closed.
    let gone = dynamo_test_suite::eventually(std::time::Duration::from_secs(30), || {
        !dynamo_test_suite::orphans::alive(pid as u32)
            && !dynamo_test::admin::is_listening(client.get())
    });
    assert!(gone, "pid {pid} or port {client} still there after SIGKILL");
    let (all, code) = scenario.finish();
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("second: ok"), "{all}");
    // The restarted instance is another process.
    assert!(
        !all.contains(&format!(
            "started it again: shared {} (pid {pid},",
            kind.name()
        )),
        "{all}"
    );
    let died = format!(
        "shared {} (pid {pid}, started by this run on port {client}) died during the test: \
         killed by signal 9 (SIGKILL)",
        kind.name()
    );
    assert!(all.contains(&died), "{all}");
    assert!(
        all.contains("the next test that needs it restarts it"),
        "{all}"
    );
    let restarted = "had ended (died: killed by signal 9 (SIGKILL)); started it again";
    assert_eq!(all.matches(restarted).count(), 1, "logged once: {all}");
}

#[dynamo_test(timeout = "120s")]
fn a_killed_shared_etcd_fails_its_test_and_is_restarted_for_the_next(
    client: Port,
    peer: Port,
    ctx: &dynamo_test::TestContext,
) {
    heals(
        ServiceKind::Etcd,
        &client,
        &peer,
        &ctx.output_dir().join("out"),
    );
}

#[dynamo_test(timeout = "120s")]
fn a_killed_shared_nats_fails_its_test_and_is_restarted_for_the_next(
    client: Port,
    monitor: Port,
    ctx: &dynamo_test::TestContext,
) {
    heals(
        ServiceKind::Nats,
        &client,
        &monitor,
        &ctx.output_dir().join("out"),
    );
}

/// An etcd that the harness did not start, found healthy on the plan's
/// fixed port: used, and when it stops mid-run, never restarted; both the
/// test using it and the next one say it was external.
#[dynamo_test(timeout = "120s")]
async fn a_stopped_external_etcd_is_named_external_and_never_restarted(
    client: Port,
    peer: Port,
    ctx: &dynamo_test::TestContext,
) {
    let ports = dynamo_test::admin::ServicePortPair {
        client: client.get(),
        second: peer.get(),
    };
    let url = ServiceKind::Etcd.client_url(ports);
    let etcd = dynamo_test::admin::find_binary("etcd", "ETCD_BIN", "ETCD_ENDPOINTS").unwrap();
    let external = ctx
        .process("external-etcd", etcd)
        .args(ServiceKind::Etcd.args(ports, &ctx.output_dir().join("external-data")))
        .ready(dynamo_test::health::etcd(&url))
        .start()
        .await
        .unwrap();
    let scenario = Scenario::start(
        ServiceKind::Etcd,
        &client,
        &peer,
        &ctx.output_dir().join("out"),
    );
    external.stop().await.unwrap();
    let (all, _) = scenario.finish();
    assert!(all.contains("(SharedExternal)"), "{all}");
    let external_named = format!(
        "the etcd at {url} is external (not started by the harness: a healthy etcd was \
         already on the plan's fixed port) and no longer answers"
    );
    assert!(
        all.contains(&external_named),
        "the failing test says so: {all}"
    );
    assert!(all.contains("second: failed"), "{all}");
    assert!(
        all.contains("never restarts an instance it did not start"),
        "{all}"
    );
    // Nothing started in its place.
    assert!(!dynamo_test::admin::is_listening(client.get()), "{all}");
}

/// Across test processes (as under nextest): a process using the shared
/// etcd sees it SIGKILLed; the next process restarts it.
#[dynamo_test(timeout = "120s")]
fn the_next_test_process_restarts_a_killed_shared_etcd(
    client: Port,
    peer: Port,
    ctx: &dynamo_test::TestContext,
) {
    let run = |hold: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_need_service"));
        cmd.args(["etcd", "shared"]);
        if hold {
            cmd.arg("hold");
        }
        cmd.envs(plan_env(ServiceKind::Etcd, &client, &peer))
            .env("DYNAMO_TEST_OUTPUT_DIR", ctx.output_dir().join("out"))
            .env("DYNAMO_TEST_SERVICE_GRACE_MS", "300")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let mut first = run(true);
    let mut first_out = BufReader::new(first.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("source=") {
        line.clear();
        assert!(first_out.read_line(&mut line).unwrap() > 0);
    }
    assert!(line.contains("SharedStarted"), "{line}");
    let pid = dynamo_test::admin::listeners(client.get())
        .first()
        .and_then(|l| l.pid)
        .unwrap();
    // SAFETY: kill has no memory-safety preconditions; the pid is the
    // service our scenario's keeper started on our reserved port.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let second = run(false).wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{text}");
    assert!(text.contains("source=SharedStarted"), "{text}");
    let now = dynamo_test::admin::listeners(client.get())
        .first()
        .and_then(|l| l.pid);
    assert!(
        now.is_some_and(|p| p != pid),
        "a new etcd: {now:?} (was {pid})"
    );
    drop(first.stdin.take());
    first.wait().unwrap();
}
