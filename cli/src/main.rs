//! `dynamo-test`: see ports, services and reservations; run services for a
//! development loop; wait for URLs; clean leftovers.
//!
//! Replaces `netstat -tulpn | grep` and the name-based kills of the port plan's
//! troubleshooting notes with commands that know what the harness holds and
//! stop only what it started.

mod args;
mod clean;
mod doctor;
mod output;
mod paths;
mod ports;
mod stale;
mod updown;
mod wait;

use args::Command;
use output::Out;

fn main() {
    // Like other Unix tools: `dynamo-test ports | head` ends quietly.
    // SAFETY: setting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A usage error exits 2 with the usage; --help and --version exit 0.
    let args = args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dynamo-test: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let out = Out::new(args.json, !args.no_color);
    let code = runtime.block_on(async {
        match args.command {
            Command::Ports => ports::run(&out).await,
            Command::Doctor => doctor::run(&out).await,
            Command::Up { services } => {
                let (etcd, nats) = args::up_services(&services);
                updown::up(&out, etcd, nats).await
            }
            Command::Down => updown::down(&out).await,
            Command::Wait { urls, timeout } => wait::run(&out, &urls, timeout).await,
            Command::Clean { dry_run, days } => clean::run(&out, dry_run, days),
        }
    });
    std::process::exit(code);
}

/// Prints a failure of a command (not a usage error) and returns exit code 1.
fn fail(out: &Out, message: &str) -> i32 {
    if out.json {
        out.json(&serde_json::json!({ "error": message }));
    } else {
        eprintln!("dynamo-test: {message}");
    }
    1
}
