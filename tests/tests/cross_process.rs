//! Reservations across processes: two holders never share a port, and a
//! SIGKILLed holder's reservations are free at once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use dynamo_test::ports::live_reservations;

/// Starts `port_holder n` and returns it with the ports it reserved.
fn start_holder(n: usize) -> (Child, Vec<u16>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_port_holder"))
        .arg(n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start port_holder");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ports: Vec<u16> = line
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(ports.len(), n, "holder printed {line:?}");
    (child, ports)
}

#[test]
fn two_processes_and_this_one_hold_disjoint_ports() {
    let (mut a, ports_a) = start_holder(300);
    let (mut b, ports_b) = start_holder(300);
    let ours: Vec<dynamo_test::Port> = (0..300)
        .map(|_| dynamo_test::find_free_port().unwrap())
        .collect();
    let mut all = HashSet::new();
    for p in ports_a
        .iter()
        .chain(&ports_b)
        .copied()
        .chain(ours.iter().map(|p| p.get()))
    {
        assert!(all.insert(p), "port {p} held by two processes at once");
    }
    for child in [&mut a, &mut b] {
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
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
