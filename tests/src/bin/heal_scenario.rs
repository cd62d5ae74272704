//! `heal_scenario etcd|nats`: two tests in one process, one after the
//! other, using the shared instance on the plan's ports (moved by the
//! caller's env). The first prints `using <service pid>`, waits for a line
//! on stdin (meanwhile the caller SIGKILLs or stops the service) and then
//! needs the service, so it fails; the second needs it too. Prints
//! `second: ok` or `second: failed`, and `second body at <unix ms>` when
//! the second test's body begins; exits 0 unless the first test passed.

use dynamo_test::__private::{run_async, Flavor, Mode, ServiceKind, ServiceRequest, TestConfig};
use dynamo_test::{Error, Inject, TestContext};

fn main() {
    let kind = match std::env::args().nth(1).as_deref() {
        Some("etcd") => ServiceKind::Etcd,
        Some("nats") => ServiceKind::Nats,
        _ => {
            eprintln!("usage: heal_scenario etcd|nats");
            std::process::exit(2);
        }
    };
    let services: &'static [ServiceRequest] = Box::leak(Box::new([ServiceRequest {
        kind,
        mode: Mode::Shared,
        jetstream: true,
    }]));
    let config = |name| TestConfig {
        name,
        timeout: Some(std::time::Duration::from_secs(60)),
        flavor: Flavor::CurrentThread,
        start_paused: false,
        services,
        case: false,
        should_panic: false,
    };
    let first = std::panic::catch_unwind(|| {
        run_async(config("heal::using_it_when_it_dies"), |ctx| async move {
            let port = use_it(&ctx, kind).await?;
            let pid = dynamo_test::admin::listeners(port)
                .first()
                .and_then(|l| l.pid)
                .unwrap_or(0);
            println!("using {pid}");
            let _ = tokio::task::spawn_blocking(|| std::io::stdin().lines().next()).await;
            use_it(&ctx, kind).await.map(|_| Ok(()))
        })
    });
    if first.is_ok() {
        eprintln!("the first test passed: the service did not die under it");
        std::process::exit(3);
    }
    let second = std::panic::catch_unwind(|| {
        run_async(config("heal::the_next_test"), |ctx| async move {
            let body = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            println!("second body at {}", body.as_millis());
            use_it(&ctx, kind).await.map(|_| Ok(()))
        })
    });
    println!("second: {}", if second.is_ok() { "ok" } else { "failed" });
}

/// Real traffic to the test's instance; its client port.
async fn use_it(ctx: &TestContext, kind: ServiceKind) -> Result<u16, Error> {
    match kind {
        ServiceKind::Etcd => {
            let etcd = dynamo_test::Etcd::inject(ctx, "etcd").await?;
            etcd.put(&etcd.key("k"), "v").await?;
            Ok(etcd.port().unwrap_or(0))
        }
        _ => {
            let nats = dynamo_test::Nats::inject(ctx, "nats").await?;
            let port = nats.port().unwrap_or(0);
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map_err(|e| Error::io(format!("connecting to NATS on {port}"), e))?;
            Ok(port)
        }
    }
}
