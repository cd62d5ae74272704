//! A test process for the orphan tests: it starts a child that starts a
//! grandchild, prints `pids <child> <grandchild>`, then ends the way the
//! first argument says, so the parent test can check that nothing survives:
//!
//! - `hang`: waits forever (the parent SIGKILLs it, or SIGTERMs its group
//!   as cargo nextest does on timeout);
//! - `panic`: panics (the harness tears down, then re-raises);
//! - `timeout`: overruns a 300 ms timeout;
//! - `error`: returns an error.
//!
//! It runs the test the way `#[dynamo_test]` expands (through the
//! runtime's runner), since a binary cannot hold a libtest test.

use std::time::Duration;

use dynamo_test::__private::{run_async, Flavor, TestConfig};
use dynamo_test::TestContext;

/// The child starts a grandchild and prints both pids into its log.
const FAMILY: &str = "sleep 1000 & echo \"pids $$ $!\"; wait";

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let timeout = (mode == "timeout").then_some(Duration::from_millis(300));
    if !matches!(mode.as_str(), "hang" | "panic" | "timeout" | "error") {
        eprintln!("usage: scenario hang|panic|timeout|error");
        std::process::exit(2);
    }
    let config = TestConfig {
        name: "scenario::family",
        timeout,
        flavor: Flavor::CurrentThread,
        start_paused: false,
        services: &[],
        case: false,
        should_panic: false,
    };
    run_async(config, |ctx: TestContext| async move {
        let family = start_family(&ctx).await?;
        println!("{}", family.log_tail(1));
        match mode.as_str() {
            "panic" => panic!("scenario panics on purpose"),
            "error" => return Ok(Err("scenario fails on purpose".to_string())),
            _ => std::future::pending::<()>().await,
        }
        Ok(Ok(()))
    });
}

async fn start_family(
    ctx: &TestContext,
) -> Result<dynamo_test::ManagedProcess, dynamo_test::Error> {
    Ok(ctx
        .process("family", "sh")
        .args(["-c", FAMILY])
        .ready_log("pids ")
        .start()
        .await?)
}
