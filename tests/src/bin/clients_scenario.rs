//! `clients_scenario etcd|nats|nats-publish SUBJECT N`: a test process
//! that takes an injected client, the way a `#[dynamo_test]` parameter
//! does, in the environment its parent prepared (`ETCD_ENDPOINTS` /
//! `NATS_SERVER`, which a test cannot set in its own process):
//!
//! - `etcd`: an `etcd_client::Client`; the body prints `body ran`;
//! - `nats`: an `async_nats::Client`; the body prints `body ran`;
//! - `nats-publish SUBJECT N`: publishes `0`..`N-1` on SUBJECT and returns
//!   at once, without a flush: only the harness's drain at teardown sends
//!   what the client still holds.
//!
//! A failed setup prints the harness's error and exits 1.

use dynamo_test::__private::{run_async, Flavor, TestConfig};
use dynamo_test::{Error, Inject, TestContext};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_default();
    let publish = match (mode.as_str(), args.get(1), args.get(2)) {
        ("etcd" | "nats", None, None) => None,
        ("nats-publish", Some(subject), Some(n)) => match n.parse::<u32>() {
            Ok(n) => Some((subject.clone(), n)),
            Err(_) => usage(),
        },
        _ => usage(),
    };
    let config = TestConfig {
        name: "clients_scenario::main",
        timeout: Some(std::time::Duration::from_secs(60)),
        flavor: Flavor::CurrentThread,
        start_paused: false,
        services: &[],
        case: false,
        should_panic: false,
    };
    let outcome = std::panic::catch_unwind(|| {
        run_async(config, |ctx: TestContext| async move {
            if mode == "etcd" {
                let _client = etcd_client::Client::inject(&ctx, "client")
                    .await
                    .map_err(as_the_macro_does)?;
                println!("body ran");
                return Ok(Ok(()));
            }
            let client = async_nats::Client::inject(&ctx, "client")
                .await
                .map_err(as_the_macro_does)?;
            println!("body ran");
            if let Some((subject, n)) = publish {
                for i in 0..n {
                    if let Err(e) = client.publish(subject.clone(), i.to_string().into()).await {
                        return Ok(Err(format!("publish {i}: {e}")));
                    }
                }
                println!("published {n}");
            }
            Ok(Ok(()))
        })
    });
    if outcome.is_err() {
        std::process::exit(1);
    }
}

/// `#[dynamo_test]`'s expansion names the parameter that failed.
fn as_the_macro_does(e: Error) -> Error {
    Error::Inject {
        param: "client".to_string(),
        source: Box::new(e),
    }
}

fn usage() -> ! {
    eprintln!("usage: clients_scenario etcd|nats|nats-publish SUBJECT N");
    std::process::exit(2);
}
