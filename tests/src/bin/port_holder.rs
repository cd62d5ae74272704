//! Reserves N ports (`port_holder N`), prints them on one line, and holds
//! them until its stdin closes. The cross-process tests start it as a
//! second holder, and SIGKILL it to check that reservations free themselves.

use std::io::{BufRead, Write};

fn main() {
    let count: usize = match std::env::args().nth(1).map(|n| n.parse()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!("usage: port_holder N");
            std::process::exit(2);
        }
    };
    let ports: Vec<dynamo_test::Port> = (0..count)
        .map(|_| dynamo_test::find_free_port().unwrap_or_else(|e| fail(&e.to_string())))
        .collect();
    let line: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", line.join(" "))
        .and_then(|()| out.flush())
        .is_err()
    {
        fail("stdout closed");
    }
    // Hold until the parent closes our stdin (or kills us).
    for _ in std::io::stdin().lock().lines() {}
    drop(ports);
}

fn fail(message: &str) -> ! {
    eprintln!("port_holder: {message}");
    std::process::exit(1);
}
