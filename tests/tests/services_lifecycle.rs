//! The life of a shared service across test processes: users that start at
//! the same moment get one instance, and it stops a grace after its last
//! user is gone, also when that user was SIGKILLed. Each case moves the
//! plan's ports to reserved ones, so the suite's own services are not
//! touched.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dynamo_test::admin::ServiceKind;
use dynamo_test::admin::{is_listening, listeners};
use dynamo_test::{dynamo_test, Port};
use dynamo_test_suite::{eventually, plan_env};

/// The keepers' grace in these tests (the default is 2 s).
const GRACE_MS: u64 = 300;

/// `need_service <kind> shared hold` on the moved ports, and the line it printed.
fn start_user(kind: &str, env: &[(&'static str, String)]) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_need_service"));
    command
        .args([kind, "shared", "hold"])
        .env("DYNAMO_TEST_SERVICE_GRACE_MS", GRACE_MS.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    // The harness's own log lines come first.
    let line = BufReader::new(child.stdout.as_mut().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("source="))
        .unwrap_or_default();
    (child, line)
}

fn distinct_listener_pids(port: u16) -> Vec<u32> {
    let mut pids: Vec<u32> = listeners(port).iter().filter_map(|l| l.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Four users start at once, then all are SIGKILLed.
fn one_instance_then_gone(kind: &str, client: u16, env: Vec<(&'static str, String)>) {
    let users: Vec<std::thread::JoinHandle<(Child, String)>> = (0..4)
        .map(|_| {
            let (kind, env) = (kind.to_string(), env.clone());
            std::thread::spawn(move || start_user(&kind, &env))
        })
        .collect();
    let mut users: Vec<(Child, String)> = users.into_iter().map(|t| t.join().unwrap()).collect();
    for (_, line) in &users {
        assert!(line.starts_with("source=SharedStarted "), "{line:?}");
    }
    let pids = distinct_listener_pids(client);
    assert_eq!(pids.len(), 1, "one {kind} for all four users: {pids:?}");

    for (child, _) in &mut users {
        child.kill().unwrap(); // SIGKILL: no teardown runs
        child.wait().unwrap();
    }
    let limit = Duration::from_millis(GRACE_MS) + Duration::from_secs(3);
    let killed = Instant::now();
    std::thread::sleep(Duration::from_millis(GRACE_MS - 100));
    assert!(
        is_listening(client) || killed.elapsed() >= Duration::from_millis(GRACE_MS),
        "{kind} went down before its grace"
    );
    assert!(
        eventually(limit, || !is_listening(client)),
        "{kind} on {client} still up {limit:?} after its last user was SIGKILLed"
    );
}

#[dynamo_test(timeout = "60s")]
fn etcd_users_share_one_instance_that_stops_after_the_last(client: Port, peer: Port) {
    let env = plan_env(ServiceKind::Etcd, &client, &peer);
    one_instance_then_gone("etcd", client.get(), env);
}

#[dynamo_test(timeout = "60s")]
fn nats_users_share_one_instance_that_stops_after_the_last(client: Port, monitor: Port) {
    let env = plan_env(ServiceKind::Nats, &client, &monitor);
    one_instance_then_gone("nats", client.get(), env);
}

#[dynamo_test(timeout = "60s")]
fn a_keeper_told_to_stop_stops_its_service_and_removes_its_data(client: Port, peer: Port) {
    let env = plan_env(ServiceKind::Etcd, &client, &peer);
    let (mut user, line) = start_user("etcd", &env);
    assert!(line.starts_with("source=SharedStarted "), "{line:?}");
    let record = dynamo_test::admin::records()
        .unwrap()
        .into_iter()
        .find(|r| r.name == "etcd" && r.port == client.get())
        .expect("its keeper answers");
    let (keeper, etcd) = (record.keeper_pid.unwrap(), record.service_pid.unwrap());
    let data_dir = dynamo_test::admin::procfs::arguments(etcd)
        .unwrap()
        .windows(2)
        .find(|w| w[0] == "--data-dir")
        .map(|w| std::path::PathBuf::from(&w[1]))
        .unwrap();
    assert!(data_dir.exists());
    // SAFETY: kill has no memory-safety preconditions; the pid is the keeper our user started.
    assert_eq!(
        unsafe { libc::kill(keeper as libc::pid_t, libc::SIGTERM) },
        0
    );
    assert!(
        eventually(Duration::from_secs(5), || !is_listening(client.get())),
        "etcd still up after its keeper's SIGTERM"
    );
    assert!(
        eventually(Duration::from_secs(2), || !data_dir.exists()),
        "data removed"
    );
    let log = std::fs::read_to_string(&record.log).unwrap();
    assert!(
        log.contains(&format!("stopped {} (pid {etcd}", record.program)),
        "{log}"
    );
    assert!(log.contains("): signalled"), "{log}");
    user.kill().unwrap();
    user.wait().unwrap();
}

/// A user whose keeper stopped joins the keeper that runs the instance
/// now, at its next test: that keeper counts it and keeps the service up
/// for it.
#[dynamo_test(timeout = "60s")]
fn a_process_whose_keeper_stopped_joins_the_next_one(client: Port, peer: Port) {
    use std::io::Write;
    let env = plan_env(ServiceKind::Etcd, &client, &peer);
    let keeper_of = || {
        dynamo_test::admin::records()
            .unwrap()
            .into_iter()
            .find(|r| r.name == "etcd" && r.port == client.get())
    };
    // P: a first test, then (on a line) a second one in the same process.
    let mut command = Command::new(env!("CARGO_BIN_EXE_need_service"));
    command
        .args(["etcd", "shared", "again"])
        .env("DYNAMO_TEST_SERVICE_GRACE_MS", GRACE_MS.to_string())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut p = command.spawn().unwrap();
    let mut p_out = BufReader::new(p.stdout.take().unwrap()).lines();
    let mut next_source = || {
        p_out
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.starts_with("source="))
            .unwrap_or_default()
    };
    assert!(next_source().starts_with("source=SharedStarted"));
    let first = keeper_of().unwrap().keeper_pid.unwrap();
    // SAFETY: kill has no memory-safety preconditions; the pid is the keeper P started.
    assert_eq!(
        unsafe { libc::kill(first as libc::pid_t, libc::SIGTERM) },
        0
    );
    assert!(eventually(Duration::from_secs(5), || keeper_of().is_none()
        && !is_listening(client.get())));
    // Q starts a new instance; then P's second test.
    let (mut q, line) = start_user("etcd", &env);
    assert!(line.starts_with("source=SharedStarted "), "{line:?}");
    writeln!(p.stdin.as_mut().unwrap()).unwrap();
    assert!(next_source().starts_with("source=SharedStarted"));
    let second = keeper_of().unwrap();
    assert_ne!(second.keeper_pid, Some(first));
    assert_eq!(second.users, 2, "P joined the new keeper: {second:?}");
    // Q goes: the service stays up for P beyond the grace.
    q.kill().unwrap();
    q.wait().unwrap();
    std::thread::sleep(Duration::from_millis(GRACE_MS + 500));
    assert!(is_listening(client.get()), "stopped under P");
    p.kill().unwrap();
    p.wait().unwrap();
    assert!(eventually(Duration::from_secs(5), || !is_listening(
        client.get()
    )));
}
