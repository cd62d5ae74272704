//! `dynamo-test up` / `down`: the shared services for a development loop.
//!
//! `up` starts a *holder* per service: a process that holds the service's
//! users lock (see the keeper in `dynamo_test::services`), so the service
//! stays up between test runs, which then reuse it. `down` stops only the
//! holders `up` recorded; the keeper then stops the service after its
//! grace. Nothing else is touched.
//!
//! A holder is recorded as `<pid>:<start time>:<PID namespace inode>` in
//! `<service>-<port>.up` next to the users file. `down` signals it only
//! through a pidfd taken on that very process (same start time, our uid,
//! our namespace): a pid reused since, or one of another PID namespace
//! sharing the state directory, is never signalled.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dynamo_test::admin::ServiceKind;
use dynamo_test::admin::{self, procfs, Origin, PinnedProcess, ProcStat};
use serde_json::json;

use crate::output::Out;

/// Holds the users lock until killed: `exec sleep` keeps fd 9 (the lock).
const HOLDER: &str = r#"exec 9<"$0" && flock -s 9 && exec sleep 2147483647"#;

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
    let recorded = read_marker(&marker);
    if let Some(holder) = recorded.filter(|h| !h.in_our_namespace()) {
        return Err(holder.foreign(&marker));
    }
    let already = recorded.filter(|h| procfs::is_running(h.pid, h.started));
    let ours = match already {
        Some(_) => None,
        None => Some(start_holder(kind, port, &marker)?),
    };
    let acquired = admin::acquire_shared(kind).await;
    let (ports, origin) = match acquired {
        Ok(found) => found,
        Err(e) => {
            // Nothing may stay behind for a service that is not up.
            if let Some(holder) = ours {
                let _ = stop_holder(holder);
                let _ = std::fs::remove_file(&marker);
            }
            return Err(e.to_string());
        }
    };
    let note = match (origin, already.is_some()) {
        (_, true) => "already up",
        (Origin::Harness, false) => "started; kept up until `dynamo-test down`",
        (Origin::External, false) => {
            "an instance the harness did not start was already there: reused, never stopped"
        }
    };
    Ok(
        json!({"service": kind.name(), "url": kind.client_url(ports), "port": ports.client, "note": note}),
    )
}

/// A holder `up` started, as its marker records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Holder {
    pid: u32,
    /// Start time (clock ticks since boot): the pid's identity.
    started: u64,
    /// Inode of the PID namespace `up` ran in; `None` in older markers
    /// (read as ours).
    pid_namespace: Option<u64>,
}

impl Holder {
    fn in_our_namespace(&self) -> bool {
        self.pid_namespace.is_none() || self.pid_namespace == procfs::own_pid_namespace()
    }

    /// The error for a holder recorded from another PID namespace: its pid
    /// means nothing here.
    fn foreign(&self, marker: &Path) -> String {
        format!(
            "{} was written by `dynamo-test up` in another PID namespace (pid:[{}]; ours is pid:[{}]): \
             its holder pid {} means nothing here and is not touched; run `dynamo-test down` there, \
             or remove {} if that namespace is gone",
            marker.display(),
            self.pid_namespace.unwrap_or(0),
            procfs::own_pid_namespace().unwrap_or(0),
            self.pid,
            marker.display()
        )
    }
}

/// Starts the holder and records it in `marker`.
fn start_holder(kind: ServiceKind, port: u16, marker: &Path) -> Result<Holder, String> {
    let users = admin::users_file(kind, port).map_err(|e| e.to_string())?;
    let pid = spawn_holder(&users, kind).map_err(|e| format!("starting the holder: {e}"))?;
    let holder = Holder {
        pid,
        started: ProcStat::read(pid).map_or(0, |s| s.start_time),
        pid_namespace: procfs::own_pid_namespace(),
    };
    let ns = holder.pid_namespace.unwrap_or(0);
    if let Err(e) = std::fs::write(marker, format!("{pid}:{}:{ns}\n", holder.started)) {
        let _ = stop_holder(holder);
        return Err(format!("writing {}: {e}", marker.display()));
    }
    Ok(holder)
}

/// SIGTERMs a holder `up` started, through a pidfd on that very process;
/// `Ok` also when it is gone already (its pid is then not signalled).
fn stop_holder(holder: Holder) -> Result<(), String> {
    match PinnedProcess::pin(holder.pid, holder.started) {
        Ok(pinned) => pinned.terminate().map(|_| ()).map_err(|e| e.to_string()),
        Err(e) if e.is_gone() => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

fn spawn_holder(users: &Path, kind: ServiceKind) -> std::io::Result<u32> {
    let child = Command::new("/bin/sh")
        .args(["-c", HOLDER])
        .arg(users)
        .env(admin::ENV_SERVICE, format!("up-{}", kind.name()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let mut child = child;
    // Give flock a moment to take the lock before this process (also a user) exits.
    std::thread::sleep(Duration::from_millis(100));
    if let Some(status) = child.try_wait()? {
        return Err(std::io::Error::other(format!(
            "the holder exited at once ({status})"
        )));
    }
    let pid = child.id();
    // Not waited for: it must outlive this command (it is reparented on our exit).
    std::mem::forget(child);
    Ok(pid)
}

/// Runs `down`: stops the holders `up` recorded, then waits for the services
/// to close their ports.
pub async fn down(out: &Out) -> i32 {
    let plan = match dynamo_test::ServicePorts::from_env() {
        Ok(p) => p,
        Err(e) => return crate::fail(out, &e.to_string()),
    };
    let mut stopped = Vec::new();
    let mut problems = Vec::new();
    for kind in [ServiceKind::Etcd, ServiceKind::Nats] {
        let port = kind.fixed_ports(&plan).client;
        let Ok(marker) = marker_path(kind, port) else {
            continue;
        };
        let Some(holder) = read_marker(&marker) else {
            continue;
        };
        if !holder.in_our_namespace() {
            problems.push(holder.foreign(&marker));
            continue;
        }
        // Only the holder `up` started: same pid *and* same start time.
        if let Err(e) = stop_holder(holder) {
            problems.push(format!("{}: the holder `up` started: {e}", kind.name()));
            continue;
        }
        let _ = std::fs::remove_file(&marker);
        let gone = wait_until_closed(port, Duration::from_secs(10)).await;
        stopped.push(json!({"service": kind.name(), "port": port, "stopped": gone}));
    }
    if !problems.is_empty() {
        return crate::fail(out, &problems.join("\n"));
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
                out.warn("still running (other users remain)")
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
    let users = admin::users_file(kind, port).map_err(|e| e.to_string())?;
    Ok(users.with_extension("up"))
}

/// The holder `up` started: `pid:start_time:pidns` (`pid:start_time`
/// from older versions).
fn read_marker(path: &Path) -> Option<Holder> {
    parse_marker(&std::fs::read_to_string(path).ok()?)
}

fn parse_marker(text: &str) -> Option<Holder> {
    let mut parts = text.trim().split(':');
    let holder = Holder {
        pid: parts.next()?.parse().ok()?,
        started: parts.next()?.parse().ok()?,
        pid_namespace: match parts.next() {
            Some(ns) => Some(ns.parse().ok()?),
            None => None,
        },
    };
    parts.next().is_none().then_some(holder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_old_and_new() {
        let old = parse_marker("12:345\n").unwrap();
        assert_eq!(old.pid_namespace, None);
        assert!(old.in_our_namespace(), "an old marker is read as ours");
        let ours = procfs::own_pid_namespace().unwrap();
        let new = parse_marker(&format!("12:345:{ours}")).unwrap();
        assert_eq!((new.pid, new.started), (12, 345));
        assert!(new.in_our_namespace());
        let foreign = parse_marker(&format!("12:345:{}", ours + 1)).unwrap();
        assert!(!foreign.in_our_namespace());
        let msg = foreign.foreign(Path::new("/s/etcd-2379.up"));
        assert!(msg.contains("another PID namespace"), "{msg}");
        assert!(msg.contains("run `dynamo-test down` there"), "{msg}");
        assert_eq!(parse_marker("12"), None);
        assert_eq!(parse_marker("12:x"), None);
        assert_eq!(parse_marker("1:2:3:4"), None);
    }
}
