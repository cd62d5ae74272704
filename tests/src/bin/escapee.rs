//! A test process for the escapee tests: it starts a child whose
//! descendant leaves the child's process group, prints `pids <child>
//! <descendant>`, then ends the way the first argument says:
//!
//! - `pass`: the body returns (teardown must stop the descendant);
//! - `panic`: the body panics (the same, before the panic is re-raised);
//! - `hang`: waits forever (the parent SIGKILLs it: the child's watchdog
//!   must sweep the descendant).
//!
//! The second argument says how the descendant leaves: `setsid` (a new
//! session), `daemon` (a double fork into a new session: its parent exits
//! at once, so it is reparented), `pgroup` (a process group of its own in
//! the same session), `leader-exits` (a new session, and the child itself
//! exits at once).

use std::time::Duration;

use dynamo_test::__private::{run_async, Flavor, TestConfig};
use dynamo_test::TestContext;

fn family(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "setsid" => "setsid sleep 1000 & echo \"pids $$ $!\"; exec sleep 600",
        "daemon" => "( setsid sleep 1000 & echo \"pids $$ $!\" ); exec sleep 600",
        // The child exits at once; only its descendant is left.
        "leader-exits" => "setsid sleep 1000 & echo \"pids $$ $!\"",
        "pgroup" => {
            "perl -e 'setpgrp(0, 0); exec \"sleep\", \"1000\"' & echo \"pids $$ $!\"; exec sleep 600"
        }
        _ => return None,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ending, kind) = match args.as_slice() {
        [ending, kind] if ["pass", "panic", "hang"].contains(&ending.as_str()) => {
            (ending.clone(), kind.clone())
        }
        _ => usage(),
    };
    let script = family(&kind).unwrap_or_else(|| usage());
    let config = TestConfig {
        name: "escapee::family",
        timeout: None,
        flavor: Flavor::CurrentThread,
        start_paused: false,
        services: &[],
        case: false,
        should_panic: false,
    };
    run_async(config, |ctx: TestContext| async move {
        let family = start_family(&ctx, script).await?;
        // The pids line once the descendant has really left the group (the
        // shell prints it before the descendant's setsid/setpgid runs).
        let pids = family.log_tail(1);
        let escaped = pids
            .strip_prefix("pids ")
            .and_then(|p| p.split_whitespace().nth(1)?.parse::<u32>().ok())
            .is_some_and(|descendant| left_the_group(family.pid(), descendant));
        if !escaped {
            return Ok(Err(format!("the descendant never left the group: {pids}")));
        }
        println!("{pids}");
        match ending.as_str() {
            "panic" => panic!("escapee scenario panics on purpose"),
            "hang" => std::future::pending::<()>().await,
            _ => {}
        }
        Ok(Ok(()))
    });
}

/// Waits (up to 10 s) until `descendant` is in another group than
/// `child`'s (whose id is the child's pid: it leads its group).
fn left_the_group(child: u32, descendant: u32) -> bool {
    let group = |pid| dynamo_test::admin::ProcStat::read(pid).map(|s| s.pgrp);
    (0..1000).any(|_| {
        if group(descendant).is_some_and(|d| d != child) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
        false
    })
}

fn usage() -> ! {
    eprintln!("usage: escapee pass|panic|hang setsid|daemon|pgroup|leader-exits");
    std::process::exit(2);
}

async fn start_family(
    ctx: &TestContext,
    script: &'static str,
) -> Result<dynamo_test::ManagedProcess, dynamo_test::Error> {
    Ok(ctx
        .process("family", "sh")
        .args(["-c", script])
        .grace(Duration::from_millis(500))
        .ready_log("pids ")
        .start()
        .await?)
}
