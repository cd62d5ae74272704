//! `orphan_check [N]`: N times (default 100), starts the `scenario` test
//! process (a child plus a grandchild), SIGKILLs it, and counts family
//! members still alive 2 s later. Prints the count; exits 1 if any survived.
//!
//! Run: `cargo build -p dynamo-test-suite --bins && target/debug/orphan_check 100`

use std::time::{Duration, Instant};

use dynamo_test_suite::orphans;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let scenario = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name("scenario"),
        Err(e) => fail(&format!("cannot find this binary: {e}")),
    };
    if !scenario.exists() {
        fail(&format!(
            "{} is missing: cargo build -p dynamo-test-suite --bins",
            scenario.display()
        ));
    }
    let started = Instant::now();
    let mut survivors = Vec::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..runs {
        let mut s = orphans::start(&scenario, "hang").unwrap_or_else(|e| fail(&e.to_string()));
        let killed = Instant::now();
        let _ = s.process.kill();
        let _ = s.process.wait();
        survivors.extend(orphans::survivors_after(&s.family, Duration::from_secs(2)));
        // How long the family took to go, for the record.
        slowest = slowest.max(killed.elapsed());
    }
    println!(
        "orphan_check: {runs} SIGKILLed test processes x 2 descendants: {} survivors (slowest family gone after {slowest:.1?}; {:.1?} total)",
        survivors.len(),
        started.elapsed()
    );
    if !survivors.is_empty() {
        println!("survivors: {survivors:?}");
        std::process::exit(1);
    }
}

fn fail(message: &str) -> ! {
    eprintln!("orphan_check: {message}");
    std::process::exit(2);
}
