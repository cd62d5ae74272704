//! Reservations across processes: two holders never share a port, and a
//! SIGKILLed holder's reservations are free at once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use dynamo_test::admin::live_reservations;

/// Starts `port_holder n` (with extra env) without waiting for it.
fn spawn_holder(n: usize, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_port_holder"));
    command
        .arg(n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("start port_holder")
}

/// The ports a started holder printed (empty if it failed).
fn ports_of(child: &mut Child) -> Vec<u16> {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Starts `port_holder n` and returns it with the ports it reserved.
fn start_holder(n: usize) -> (Child, Vec<u16>) {
    let mut child = spawn_holder(n, &[]);
    let ports = ports_of(&mut child);
    assert_eq!(ports.len(), n, "holder printed {ports:?}");
    (child, ports)
}

fn release(mut child: Child) {
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

#[test]
fn eight_processes_racing_and_this_one_hold_disjoint_ports() {
    // All start at once, so their allocations really race.
    let mut children: Vec<Child> = (0..8).map(|_| spawn_holder(150, &[])).collect();
    let ours: Vec<dynamo_test::Port> = (0..150)
        .map(|_| dynamo_test::find_free_port().unwrap())
        .collect();
    let mut all: HashSet<u16> = ours.iter().map(|p| p.get()).collect();
    for child in &mut children {
        let ports = ports_of(child);
        assert_eq!(ports.len(), 150);
        for p in ports {
            assert!(all.insert(p), "port {p} held by two processes at once");
        }
    }
    children.into_iter().for_each(release);
}

#[test]
fn exhaustion_names_the_range_and_the_holders() {
    // This test holds three consecutive numbers; a holder confined to them
    // must fail and say who holds them.
    let block = consecutive_ports(3);
    let (low, high) = (block[0].get(), block[2].get());
    let range = format!("{low}-{high}");
    let child = spawn_holder(1, &[("DYNAMO_TEST_PORT_RANGE", range.clone())]);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let summary = format!("no free port in range {range} (3 ports): 3 reserved");
    assert!(err.contains(&summary), "{err}");
    let holders = format!("3 held by pid {}", std::process::id());
    assert!(err.contains(&holders), "{err}");
    assert!(err.contains("DYNAMO_TEST_PORT_RANGE=LOW-HIGH"), "{err}");
}

/// `n` reserved ports with consecutive numbers.
fn consecutive_ports(n: usize) -> Vec<dynamo_test::Port> {
    let mut base = 31000;
    loop {
        let mut block = vec![dynamo_test::find_free_port_from(base).unwrap()];
        while block.len() < n {
            let last = block[block.len() - 1].get();
            let next = dynamo_test::find_free_port_from(last + 1).unwrap();
            if next.get() != last + 1 {
                base = next.get();
                break;
            }
            block.push(next);
        }
        if block.len() == n {
            return block;
        }
    }
}

#[test]
fn a_sigkilled_holder_frees_its_ports_at_once() {
    let (mut child, ports) = start_holder(50);
    let pid = child.id();
    let held_by_child = |p: u16| {
        live_reservations()
            .unwrap()
            .iter()
            .any(|r| r.port == p && r.holder.as_ref().is_some_and(|h| h.pid == pid))
    };
    assert!(
        ports.iter().all(|&p| held_by_child(p)),
        "reservations visible with the holder's pid"
    );

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let still_held: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|&p| held_by_child(p))
        .collect();
    assert!(
        still_held.is_empty(),
        "still reserved after SIGKILL: {still_held:?}"
    );
}
