//! `dynamo-test wait URL...`: the probe engine as a wait-for tool.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use dynamo_test::health::{self, Probe};
use serde_json::json;

use crate::output::Out;

/// The probe for a URL: http(s):// GET 2xx, tcp:// connect, etcd:// health,
/// nats:// the server's `INFO {...}` greeting.
fn probe_for(url: &str) -> Box<dyn Probe> {
    if let Some(rest) = url.strip_prefix("tcp://") {
        health::tcp(rest.trim_end_matches('/')).boxed()
    } else if let Some(rest) = url.strip_prefix("etcd://") {
        health::etcd(&format!("http://{}", rest.trim_end_matches('/'))).boxed()
    } else if let Some(rest) = url.strip_prefix("nats://") {
        health::nats_client(rest).boxed()
    } else {
        health::http(url).boxed()
    }
}

/// Runs `wait`: every URL at once, each within `timeout`; the exit code: 1
/// unless all are ready.
pub async fn run(out: &Out, urls: &[String], timeout: Duration) -> i32 {
    let started = Instant::now();
    let probes: Vec<Box<dyn Probe>> = urls.iter().map(|u| probe_for(u)).collect();
    let waits = probes.iter().map(|p| health::wait(p.as_ref(), timeout));
    let live = !out.json && std::io::stderr().is_terminal();
    let status = live.then(|| tokio::spawn(status_line(started, urls.len())));
    let results = futures_util::future::join_all(waits).await;
    if let Some(status) = status {
        status.abort();
        eprint!("\r\x1b[2K");
    }
    let failed = results.iter().filter(|r| r.is_err()).count();
    if out.json {
        let items: Vec<_> = urls
            .iter()
            .zip(&results)
            .map(|(url, r)| match r {
                Ok(ready) => json!({"url": url, "ready": true, "elapsed_ms": ready.elapsed.as_millis() as u64, "attempts": ready.attempts}),
                Err(e) => json!({"url": url, "ready": false, "error": e.to_string()}),
            })
            .collect();
        out.json(&json!({"ready": failed == 0, "results": items}));
    } else {
        for (url, r) in urls.iter().zip(&results) {
            match r {
                Ok(ready) => println!(
                    "{} {url} in {:.1?} ({} attempts)",
                    out.good("ready"),
                    ready.elapsed,
                    ready.attempts
                ),
                Err(e) => println!("{} {url}: {e}", out.bad("not ready")),
            }
        }
    }
    i32::from(failed > 0)
}

/// A live "waiting 1.2s for 2 URLs" line on a terminal, until aborted.
async fn status_line(started: Instant, count: usize) {
    loop {
        eprint!(
            "\r\x1b[2Kwaiting {:.1?} for {count} URL(s)...",
            started.elapsed()
        );
        let _ = std::io::stderr().flush();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
