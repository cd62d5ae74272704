//! `dynamo-test up` / `down`: the shared services for a development loop.
//!
//! `up` brings each service up as a test would and *pins* it: it asks the
//! service's keeper to keep it up until `down` removes the pin (a pin
//! counts as a user; see the keeper in `dynamo_test::services`). The pin's
//! token is kept in `<state dir>/services/<name>-<port>.up`, so `down`
//! removes only the pins this state directory's `up` made; the keeper then
//! stops the service a grace after its last user anywhere. Nothing is
//! signalled, nothing else is touched.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dynamo_test::admin::ServiceKind;
use dynamo_test::admin::{self, Origin, Unpinned};
use serde_json::json;

use crate::output::Out;

/// Runs `up` for the services asked for; the exit code: 1 if one could not be
/// brought up (those up before it stay up).
pub async fn up(out: &Out, etcd: bool, nats: bool) -> i32 {
    let kinds = [(etcd, ServiceKind::Etcd), (nats, ServiceKind::Nats)];
    let mut report = Vec::new();
    for kind in kinds.iter().filter(|(wanted, _)| *wanted).map(|(_, k)| *k) {
        match up_one(kind).await {
            Ok(line) => report.push(line),
            Err(e) => return crate::fail(out, &up_failed(kind, &e, &report)),
        }
    }
    if out.json {
        out.json(&json!({ "up": report }));
    } else {
        for r in &report {
            println!(
                "{} {} at {} ({})",
                out.good("up"),
                r["service"].as_str().unwrap_or(""),
                r["url"].as_str().unwrap_or(""),
                r["note"].as_str().unwrap_or("")
            );
        }
        println!("tests now reuse them; `dynamo-test down` stops what `up` started");
    }
    0
}

/// The error, and what is up already (it stays up: `down` stops it).
fn up_failed(kind: ServiceKind, error: &str, up: &[serde_json::Value]) -> String {
    let mut text = format!("{}: {error}", kind.name());
    let names: Vec<&str> = up.iter().filter_map(|r| r["service"].as_str()).collect();
    if !names.is_empty() {
        text.push_str(&format!(
            "\n{} is up; `dynamo-test down` stops it",
            names.join(" and ")
        ));
    }
    text
}

async fn up_one(kind: ServiceKind) -> Result<serde_json::Value, String> {
    let plan = dynamo_test::ServicePorts::from_env().map_err(|e| e.to_string())?;
    let port = kind.fixed_ports(&plan).client;
    let marker = marker_path(kind, port)?;
    let (ports, origin) = admin::acquire_shared(kind)
        .await
        .map_err(|e| e.to_string())?;
    let url = kind.client_url(ports);
    let reply = |note: &str| json!({"service": kind.name(), "url": url, "port": ports.client, "note": note});
    if origin == Origin::External {
        let _ = std::fs::remove_file(&marker);
        return Ok(reply(
            "an instance the harness did not start was already there: reused, never stopped",
        ));
    }
    let token = read_marker(&marker).unwrap_or_else(new_token);
    let already = admin::pin(kind, port, &token).map_err(|e| e.to_string())?;
    if let Err(e) = std::fs::write(&marker, format!("{token}\n")) {
        // Nothing may stay behind that `down` could not undo.
        let _ = admin::unpin(kind, port, &token);
        return Err(format!("writing {}: {e}", marker.display()));
    }
    Ok(reply(if already {
        "already up"
    } else {
        "started; kept up until `dynamo-test down`"
    }))
}

fn new_token() -> String {
    format!(
        "{:016x}{:016x}",
        fastrand::u64(..),
        std::process::id() as u64 ^ fastrand::u64(..)
    )
}

/// Runs `down`: removes the pins `up` made, then waits for the services
/// that nobody else uses to close their ports.
pub async fn down(out: &Out) -> i32 {
    let plan = match dynamo_test::ServicePorts::from_env() {
        Ok(p) => p,
        Err(e) => return crate::fail(out, &e.to_string()),
    };
    let mut stopped = Vec::new();
    for kind in [ServiceKind::Etcd, ServiceKind::Nats] {
        let port = kind.fixed_ports(&plan).client;
        let Ok(marker) = marker_path(kind, port) else {
            continue;
        };
        let Some(token) = read_marker(&marker) else {
            continue;
        };
        let unpinned = match admin::unpin(kind, port, &token) {
            Ok(u) => u,
            Err(e) => return crate::fail(out, &format!("{}: {e}", kind.name())),
        };
        let _ = std::fs::remove_file(&marker);
        let others = match unpinned {
            Unpinned::NotPinned => continue,
            Unpinned::NoKeeper => 0,
            Unpinned::Removed { users, pins } => users + pins,
        };
        let gone = others == 0 && wait_until_closed(port, Duration::from_secs(10)).await;
        stopped.push(
            json!({"service": kind.name(), "port": port, "stopped": gone, "other_users": others}),
        );
    }
    if out.json {
        out.json(&json!({ "down": stopped }));
    } else if stopped.is_empty() {
        println!("nothing to stop: `dynamo-test up` started nothing that still runs");
    } else {
        for s in &stopped {
            let state = if s["stopped"] == true {
                out.good("stopped")
            } else {
                out.warn(&format!(
                    "still running ({} other users remain; it stops a grace after the last)",
                    s["other_users"]
                ))
            };
            println!(
                "{} {} on {}",
                state,
                s["service"].as_str().unwrap_or(""),
                s["port"]
            );
        }
    }
    0
}

/// Waits until nothing listens on `port` (the keeper stopped the service).
async fn wait_until_closed(port: u16, limit: Duration) -> bool {
    let started = Instant::now();
    while admin::is_listening(port) {
        if started.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

fn marker_path(kind: ServiceKind, port: u16) -> Result<PathBuf, String> {
    let dir = admin::ensure_state_subdir("services").map_err(|e| e.to_string())?;
    Ok(dir.join(format!("{}-{port}.up", kind.name())))
}

/// The pin token `up` recorded.
fn read_marker(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let token = text.trim();
    (!token.is_empty() && !token.contains(char::is_whitespace)).then(|| token.to_string())
}
