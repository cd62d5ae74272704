//! `dynamo-test doctor`: is this machine ready for the tests? What is stale?

use std::process::Command;

use dynamo_test::health::Probe;
use dynamo_test::ports::{ephemeral_range, holders, PortPlan, PortRange};
use dynamo_test::process::sweep;
use dynamo_test::services::{self, ServiceKind};
use serde_json::{json, Value};

use crate::output::Out;

/// Env vars the harness reads.
const KNOWN_VARS: [&str; 13] = [
    "DYNAMO_TEST_ETCD_CLIENT_PORT",
    "DYNAMO_TEST_ETCD_PEER_PORT",
    "DYNAMO_TEST_NATS_CLIENT_PORT",
    "DYNAMO_TEST_NATS_HTTP_PORT",
    "DYNAMO_TEST_DYNAMO_SERVE_BASE",
    "DYNAMO_TEST_PORT_RANGE",
    "DYNAMO_TEST_STATE_DIR",
    "DYNAMO_TEST_OUTPUT_DIR",
    "DYNAMO_TEST_SERVICE_GRACE_MS",
    "ETCD_ENDPOINTS",
    "NATS_SERVER",
    "ETCD_BIN",
    "NATS_SERVER_BIN",
];

/// One finding: `blocking` ones make the exit code non-zero.
struct Finding {
    topic: String,
    ok: bool,
    blocking: bool,
    detail: String,
    fix: Option<String>,
}

impl Finding {
    fn ok(topic: &str, detail: String) -> Finding {
        Finding {
            topic: topic.into(),
            ok: true,
            blocking: false,
            detail,
            fix: None,
        }
    }
    fn problem(topic: &str, blocking: bool, detail: String, fix: &str) -> Finding {
        Finding {
            topic: topic.into(),
            ok: false,
            blocking,
            detail,
            fix: Some(fix.into()),
        }
    }
}

pub async fn run(out: &Out) -> i32 {
    let mut findings = Vec::new();
    findings.extend(binaries());
    findings.extend(tools());
    findings.push(state_dir());
    findings.push(output_dir());
    findings.push(ranges());
    findings.extend(fixed_ports().await);
    findings.extend(stale());
    let overrides: Vec<(String, String)> = KNOWN_VARS
        .iter()
        .filter_map(|v| {
            std::env::var(v)
                .ok()
                .filter(|x| !x.is_empty())
                .map(|x| (v.to_string(), x))
        })
        .collect();
    let blocked = findings.iter().any(|f| f.blocking);
    if out.json {
        out.json(&json!({
            "ok": !blocked,
            "findings": findings.iter().map(to_json).collect::<Vec<Value>>(),
            "env_overrides": overrides.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        }));
    } else {
        print(out, &findings, &overrides, blocked);
    }
    i32::from(blocked)
}

fn print(out: &Out, findings: &[Finding], overrides: &[(String, String)], blocked: bool) {
    out.heading("dynamo-test doctor");
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            let mark = match (f.ok, f.blocking) {
                (true, _) => out.good("ok"),
                (false, true) => out.bad("BLOCKS"),
                (false, false) => out.warn("warn"),
            };
            vec![mark, f.topic.clone(), f.detail.clone()]
        })
        .collect();
    out.table(&["", "check", "detail"], &rows);
    let fixes: Vec<&Finding> = findings.iter().filter(|f| f.fix.is_some()).collect();
    if !fixes.is_empty() {
        println!();
        out.heading("To fix");
        for f in fixes {
            println!("  {}: {}", f.topic, f.fix.as_deref().unwrap_or_default());
        }
    }
    println!();
    out.heading("Env overrides in force");
    if overrides.is_empty() {
        println!("  none");
    }
    for (k, v) in overrides {
        println!("  {k}={v}");
    }
    println!();
    if blocked {
        println!(
            "{}",
            out.bad("something blocks the tests (see BLOCKS above)")
        );
    } else {
        println!("{}", out.good("nothing blocks the tests"));
    }
}

fn to_json(f: &Finding) -> Value {
    json!({"check": f.topic, "ok": f.ok, "blocking": f.blocking, "detail": f.detail, "fix": f.fix})
}

fn binaries() -> Vec<Finding> {
    [ServiceKind::Etcd, ServiceKind::Nats]
        .into_iter()
        .map(|kind| {
            match services::find_binary(kind.program(), kind.bin_env(), kind.endpoints_env()) {
                Ok(path) => Finding::ok(
                    kind.program(),
                    format!("{} ({})", path.display(), version(&path)),
                ),
                Err(_) if std::env::var_os(kind.endpoints_env()).is_some() => Finding::ok(
                    kind.program(),
                    format!(
                        "not installed, not needed: {} points at a running instance",
                        kind.endpoints_env()
                    ),
                ),
                Err(e) => Finding::problem(
                    kind.program(),
                    true,
                    e.to_string(),
                    "apt-get install etcd-server nats-server",
                ),
            }
        })
        .collect()
}

fn version(path: &std::path::Path) -> String {
    Command::new(path)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "version unknown".into())
}

fn tools() -> Vec<Finding> {
    let sh = if std::path::Path::new("/bin/sh").exists() {
        Finding::ok("/bin/sh", "present (watchdogs and keepers)".into())
    } else {
        Finding::problem(
            "/bin/sh",
            true,
            "missing: process watchdogs and service keepers need it".into(),
            "install a POSIX shell at /bin/sh",
        )
    };
    let flock =
        match services::find_binary("flock", "DYNAMO_TEST_UNUSED_FLOCK_BIN", "ETCD_ENDPOINTS") {
            Ok(path) => Finding::ok("flock", format!("{} (service keepers)", path.display())),
            Err(_) => Finding::problem(
                "flock",
                true,
                "missing: shared service keepers need flock(1)".into(),
                "apt-get install util-linux",
            ),
        };
    vec![sh, flock]
}

fn state_dir() -> Finding {
    match dynamo_test::state_dir::ensure_state_subdir("ports") {
        Ok(dir) => Finding::ok(
            "state dir",
            format!("{} (private, ours)", dir.parent().unwrap_or(&dir).display()),
        ),
        Err(e) => Finding::problem(
            "state dir",
            true,
            e.to_string(),
            "remove the directory or set DYNAMO_TEST_STATE_DIR",
        ),
    }
}

fn output_dir() -> Finding {
    match dynamo_test::output_root() {
        Ok(dir) => {
            let probe = dir.join(".doctor-write-check");
            let writable = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&probe, b""))
                .is_ok();
            let _ = std::fs::remove_file(&probe);
            if writable {
                Finding::ok("output dir", format!("{} (writable)", dir.display()))
            } else {
                Finding::problem(
                    "output dir",
                    true,
                    format!("{} is not writable", dir.display()),
                    "set DYNAMO_TEST_OUTPUT_DIR to a writable directory",
                )
            }
        }
        Err(e) => Finding::problem(
            "output dir",
            true,
            e.to_string(),
            "fix DYNAMO_TEST_OUTPUT_DIR",
        ),
    }
}

fn ranges() -> Finding {
    let ephemeral = ephemeral_range().map_or("unknown".to_string(), |r| r.to_string());
    match PortRange::dynamic_from_env() {
        Ok(r) => Finding::ok(
            "port ranges",
            format!(
                "dynamic {r} ({} ports), kernel ephemeral {ephemeral}",
                r.len()
            ),
        ),
        Err(e) => Finding::problem(
            "port ranges",
            true,
            e.to_string(),
            "set DYNAMO_TEST_PORT_RANGE=LOW-HIGH below the ephemeral range",
        ),
    }
}

/// A fixed port held by something that is not a healthy etcd/NATS blocks the tests.
async fn fixed_ports() -> Vec<Finding> {
    let plan = match PortPlan::from_env() {
        Ok(p) => p,
        Err(e) => {
            return vec![Finding::problem(
                "port plan",
                true,
                e.to_string(),
                "fix the variable",
            )]
        }
    };
    let mut found = Vec::new();
    for kind in [ServiceKind::Etcd, ServiceKind::Nats] {
        let ports = kind.fixed_ports(&plan);
        let listening: Vec<String> = [ports.client, ports.second]
            .iter()
            .flat_map(|p| holders::listeners(*p))
            .map(|l| l.to_string())
            .collect();
        let topic = format!("{} ports {}/{}", kind.name(), ports.client, ports.second);
        if listening.is_empty() {
            found.push(Finding::ok(&topic, "free".into()));
        } else if kind
            .probe(ports)
            .check(std::time::Duration::from_secs(1))
            .await
            .is_ready()
        {
            found.push(Finding::ok(
                &topic,
                format!("a healthy {} runs there (reused by tests)", kind.name()),
            ));
        } else {
            found.push(Finding::problem(
                &topic,
                true,
                format!(
                    "held by {}, not a healthy {}",
                    listening.join(", "),
                    kind.name()
                ),
                "stop that process, or move the plan's ports with DYNAMO_TEST_*_PORT",
            ));
        }
    }
    found
}

fn stale() -> Vec<Finding> {
    let mut found = Vec::new();
    for orphan in sweep::find_orphans() {
        found.push(Finding::problem(
            "orphan process",
            false,
            format!(
                "pid {} `{}` ({}) outlived its test (pid {})",
                orphan.pid, orphan.name, orphan.command, orphan.owner_pid
            ),
            "dynamo-test clean",
        ));
    }
    for record in services::records().unwrap_or_default() {
        if !record.keeper_alive {
            found.push(Finding::problem(
                "stale service record",
                false,
                format!("{} (its keeper is gone)", record.path.display()),
                "dynamo-test clean",
            ));
        }
    }
    if found.is_empty() {
        found.push(Finding::ok(
            "leftovers",
            "no orphan processes, no stale service records".into(),
        ));
    }
    found
}
