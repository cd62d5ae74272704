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

fn heals(kind: ServiceKind, client: &Port, second: &Port, out: &std::path::Path) {
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
    let pid: i32 = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "no pid: {seen}");
        if let Some(pid) = line.trim().strip_prefix("using ") {
            break pid.parse().unwrap();
        }
        seen.push_str(&line);
    };
    assert!(pid > 0, "{seen}");
    // The OOM killer, as far as the service can tell. It is ours: started
    // by the keeper of the scenario we started, on ports we reserved.
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    // A signal is delivered after kill returns: the test goes on once the
    // service is dead (its sockets closed).
    let dead = dynamo_test_suite::eventually(std::time::Duration::from_secs(30), || {
        !dynamo_test_suite::orphans::alive(pid as u32)
    });
    assert!(dead, "pid {pid} still runs after SIGKILL");
    writeln!(child.stdin.take().unwrap(), "go").unwrap();
    let mut rest = seen;
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let all = format!("{rest}{err}");
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(rest.contains("second: ok"), "{all}");
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
