//! `dynamo-test wait URL...`: the probe engine as a wait-for tool.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use dynamo_test::health::{self, Check, CheckFuture, Probe};
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::output::Out;

/// The probe for a URL: http(s):// GET 2xx, tcp:// connect, etcd:// health,
/// nats:// the server's `INFO {...}` greeting.
fn probe_for(url: &str) -> Box<dyn Probe> {
    if let Some(rest) = url.strip_prefix("tcp://") {
        health::tcp(rest.trim_end_matches('/')).boxed()
    } else if let Some(rest) = url.strip_prefix("etcd://") {
        health::etcd(&format!("http://{}", rest.trim_end_matches('/'))).boxed()
    } else if let Some(rest) = url.strip_prefix("nats://") {
        NatsProbe::new(rest).boxed()
    } else {
        health::http(url).boxed()
    }
}

pub async fn run(out: &Out, urls: &[String], timeout: Duration) -> i32 {
    let started = Instant::now();
    let probes: Vec<Box<dyn Probe>> = urls.iter().map(|u| probe_for(u)).collect();
    let waits = probes.iter().map(|p| health::wait(p.as_ref(), timeout));
    let live = !out.json && std::io::stderr().is_terminal();
    let status = live.then(|| tokio::spawn(status_line(started, urls.len())));
    let results = dynamo_test::join::join_all(waits).await;
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

/// Ready when the server greets with `INFO {` (the NATS protocol): a TCP
/// connect alone said "ready" for any listener, etcd included.
struct NatsProbe {
    /// `host:port` (credentials and trailing `/` dropped).
    addr: String,
}

/// Longest greeting read: NATS sends one INFO line of well under this.
const MAX_GREETING: usize = 8192;

impl NatsProbe {
    fn new(rest: &str) -> NatsProbe {
        let host_port = rest.split('/').next().unwrap_or_default();
        let addr = host_port.rsplit('@').next().unwrap_or_default();
        NatsProbe {
            addr: addr.to_string(),
        }
    }

    async fn attempt(&self, budget: Duration) -> Check {
        let targets = match targets(&self.addr).await {
            Ok(targets) => targets,
            Err(check) => return check,
        };
        let mut last = Check::not_ready("no address to connect to");
        for target in targets {
            match tokio::time::timeout(budget, tokio::net::TcpStream::connect(target)).await {
                Ok(Ok(stream)) => return greeting(stream, budget).await,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    last = Check::not_ready("connection refused")
                }
                Ok(Err(e)) => last = Check::not_ready(format!("connect to {target}: {e}")),
                Err(_) => last = Check::not_ready(format!("connect to {target} timed out")),
            }
        }
        last
    }
}

impl Probe for NatsProbe {
    fn describe(&self) -> String {
        format!("NATS INFO greeting from {}", self.addr)
    }

    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        Box::pin(self.attempt(budget))
    }
}

/// Reads the first line (within most of the budget, so the reason is ours,
/// not the wait loop's "attempt timed out").
async fn greeting(mut stream: tokio::net::TcpStream, budget: Duration) -> Check {
    let mut line = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        while !line.contains(&b'\n') && line.len() < MAX_GREETING {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => line.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    let limit = budget * 9 / 10;
    let outcome = tokio::time::timeout(limit, read).await;
    match outcome {
        Err(_) if line.is_empty() => {
            Check::not_ready("connected, but no greeting (not a NATS server?)")
        }
        Ok(Err(e)) => Check::not_ready(format!("reading the greeting: {e}")),
        Ok(Ok(())) if line.is_empty() => {
            Check::not_ready("connected, but it closed without a greeting (not a NATS server?)")
        }
        _ if line.starts_with(b"INFO {") => Check::Ready,
        _ => {
            let first = String::from_utf8_lossy(&line);
            let first: String = first
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(80)
                .collect();
            Check::not_ready(format!(
                "not a NATS server: it sent {first:?}, expected `INFO {{...}}`"
            ))
        }
    }
}

/// The addresses to try: loopback names mean both 127.0.0.1 and ::1 (a
/// server usually listens on one only), IPs themselves, other names resolved.
async fn targets(addr: &str) -> Result<Vec<std::net::SocketAddr>, Check> {
    let bad = || Check::fatal(format!("{addr:?} is not a host:port address"));
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![(ip, port).into()]);
    }
    if host.eq_ignore_ascii_case("localhost") {
        let v4 = std::net::Ipv4Addr::LOCALHOST;
        return Ok(vec![
            (v4, port).into(),
            (std::net::Ipv6Addr::LOCALHOST, port).into(),
        ]);
    }
    match tokio::net::lookup_host((host, port)).await {
        Ok(found) => Ok(found.collect()),
        Err(e) => Err(Check::not_ready(format!("cannot resolve {host}: {e}"))),
    }
}
