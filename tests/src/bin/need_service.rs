//! `need_service etcd|nats shared|isolated [hold|again]`: a test process
//! that asks for one service, the way `#[dynamo_test(services(..))]` does,
//! and prints `source=<Source> url=<url>`; on failure it prints the error
//! and exits 1. With `hold`, it then keeps the service until its stdin
//! closes (or it is killed): a user of the service that tests can
//! SIGKILL. With `again`, it waits for a line on stdin, then runs a second
//! such test in the same process (printing its line too), then holds.
//!
//! The service tests run it with a prepared environment (a bad PATH, a port
//! held by a stranger, or `ETCD_ENDPOINTS`), which a test cannot set in its
//! own process.

use dynamo_test::__private::{run_async, Flavor, Mode, ServiceKind, ServiceRequest, TestConfig};
use dynamo_test::TestContext;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kind, mode) = match (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) {
        (Some("etcd"), Some(m)) => (ServiceKind::Etcd, m),
        (Some("nats"), Some(m)) => (ServiceKind::Nats, m),
        _ => usage(),
    };
    let again = args.get(2).map(String::as_str) == Some("again");
    let hold = again || args.get(2).map(String::as_str) == Some("hold");
    let mode = match mode {
        "shared" => Mode::Shared,
        "isolated" => Mode::Isolated,
        _ => usage(),
    };
    let request: &'static [ServiceRequest] = Box::leak(Box::new([ServiceRequest {
        kind,
        mode,
        jetstream: true,
    }]));
    let config = TestConfig {
        name: "need_service::main",
        timeout: Some(std::time::Duration::from_secs(60)),
        flavor: Flavor::CurrentThread,
        start_paused: false,
        services: request,
        case: false,
        should_panic: false,
    };
    if again {
        let first = config.clone();
        let outcome = std::panic::catch_unwind(|| run_once(first, kind, false));
        if outcome.is_err() {
            std::process::exit(1);
        }
        let _ = std::io::stdin().lines().next();
    }
    if std::panic::catch_unwind(|| run_once(config, kind, hold)).is_err() {
        std::process::exit(1);
    }
}

/// One test that obtains `kind`, prints where from, and (with `hold`)
/// keeps it until stdin closes.
fn run_once(config: TestConfig, kind: ServiceKind, hold: bool) {
    {
        run_async(config, |ctx: TestContext| async move {
            let (source, url) = match kind {
                ServiceKind::Etcd => {
                    let etcd =
                        <dynamo_test::Etcd as dynamo_test::Inject>::inject(&ctx, "etcd").await?;
                    (etcd.source(), etcd.url().to_string())
                }
                ServiceKind::Nats => {
                    let nats =
                        <dynamo_test::Nats as dynamo_test::Inject>::inject(&ctx, "nats").await?;
                    (nats.source(), nats.url().to_string())
                }
            };
            println!("source={source:?} url={url}");
            if hold {
                use std::io::Write;
                let _ = std::io::stdout().flush();
                let _ = tokio::task::spawn_blocking(|| for _ in std::io::stdin().lines() {}).await;
            }
            Ok(Ok(()))
        })
    }
}

fn usage() -> ! {
    eprintln!("usage: need_service etcd|nats shared|isolated [hold]");
    std::process::exit(2);
}
