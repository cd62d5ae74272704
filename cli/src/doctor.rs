//! `dynamo-test doctor`: is this machine ready for the tests? What is stale?

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use dynamo_test::admin::ServiceKind;
use dynamo_test::admin::{self, ephemeral_range, PortRange};
use dynamo_test::ServicePorts;
use serde_json::{json, Value};

use crate::output::Out;
use crate::paths::{self, OutputRoot};
use crate::stale;

/// Env vars the harness reads.
const KNOWN_VARS: [&str; 16] = [
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
    "DYNAMO_PYTHON",
    "DYNAMO_TEST_REQUIRE_DYNAMO",
    "DYNAMO_TEST_ARTIFACTS_DIR",
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

/// Runs `doctor`; the exit code: 1 if something blocks the tests.
pub async fn run(out: &Out) -> i32 {
    let mut findings = Vec::new();
    findings.extend(binaries());
    findings.extend(tools());
    findings.push(dynamo());
    findings.push(state_dir());
    let root = paths::output_root();
    findings.push(output_dir(&root));
    findings.push(ranges());
    findings.extend(plan_conflicts());
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
            "output_root": root.as_ref().ok().map(|r| json!({"path": r.path.display().to_string(), "source": r.source})),
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
        .flat_map(|kind| {
            match admin::find_binary(kind.program(), kind.bin_env(), kind.endpoints_env()) {
                Ok(path) => vec![binary(kind, &path)],
                Err(_) if std::env::var_os(kind.endpoints_env()).is_some_and(|v| !v.is_empty()) => {
                    vec![Finding::ok(
                        kind.program(),
                        format!(
                            "not installed, not needed: {} points at a running instance",
                            kind.endpoints_env()
                        ),
                    )]
                }
                Err(e) => vec![Finding::problem(
                    kind.program(),
                    true,
                    e.to_string(),
                    "apt-get install etcd-server nats-server",
                )],
            }
        })
        .collect()
}

/// The binary the tests would run must say it is etcd / nats-server: a
/// wrong ETCD_BIN otherwise shows up as a confusing start failure.
fn binary(kind: ServiceKind, path: &Path) -> Finding {
    let word = kind.name();
    let fix = format!(
        "point {} at the {} binary, or unset it to search PATH",
        kind.bin_env(),
        kind.program()
    );
    match version(path) {
        Ok((first, all)) if all.to_lowercase().contains(word) => {
            Finding::ok(kind.program(), format!("{} ({first})", path.display()))
        }
        Ok((first, _)) => Finding::problem(
            kind.program(),
            true,
            format!(
                "{}: `--version` says {first:?}, which does not name {word}",
                path.display()
            ),
            &fix,
        ),
        Err(e) => Finding::problem(kind.program(), true, e, &fix),
    }
}

/// Limit for `<binary> --version` (ETCD_BIN may name anything).
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// The first line of `<path> --version`, and all it printed (stdout and stderr).
fn version(path: &Path) -> Result<(String, String), String> {
    let shown = path.display();
    // The command's own child: no test's tag, should the command have one.
    let child = admin::strip_owner_tag(&mut Command::new(path))
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{shown} --version`: {e}"))?;
    let mut child = child;
    // Read both pipes while waiting (a chatty binary would block on a full
    // pipe otherwise), each on a thread, so that the wait can time out.
    let read_all = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read_all(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read_all(child.stderr.take().map(|p| Box::new(p) as _));
    let started = std::time::Instant::now();
    // Polled through the `Child`: until it is reaped (here, by `try_wait`)
    // its pid cannot go to another process, so the kill below is safe.
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < VERSION_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{shown} --version` did not finish within {VERSION_TIMEOUT:?}"
                ));
            }
            Err(e) => return Err(format!("waiting for `{shown} --version`: {e}")),
        }
    }
    // A grandchild holding the pipes open must not hang the doctor either.
    let collect = |reader: std::thread::JoinHandle<Vec<u8>>| {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while !reader.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        match reader.is_finished() {
            true => reader.join().unwrap_or_default(),
            false => Vec::new(),
        }
    };
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&collect(stdout)),
        String::from_utf8_lossy(&collect(stderr))
    );
    let first = all.lines().map(str::trim).find(|l| !l.is_empty());
    Ok((first.unwrap_or("nothing").to_string(), all))
}

fn tools() -> Vec<Finding> {
    let sh = if std::path::Path::new("/bin/sh").exists() {
        Finding::ok("/bin/sh", "present (process watchdogs)".into())
    } else {
        Finding::problem(
            "/bin/sh",
            true,
            "missing: process watchdogs need it".into(),
            "install a POSIX shell at /bin/sh",
        )
    };
    vec![sh]
}

/// Dynamo is needed only by tests that start a stack (`ctx.dynamo()`):
/// its absence is a warning, never blocking.
fn dynamo() -> Finding {
    use dynamo_test::dynamo::{Dynamo, TESTED_DYNAMO_VERSION};
    match Dynamo::find() {
        Ok(found) if found.version == TESTED_DYNAMO_VERSION => Finding::ok(
            "Dynamo",
            format!("ai-dynamo {} ({})", found.version, found.python.display()),
        ),
        Ok(found) => Finding::problem(
            "Dynamo",
            false,
            format!(
                "ai-dynamo {} ({}); the harness is tested with {TESTED_DYNAMO_VERSION}",
                found.version,
                found.python.display()
            ),
            "bash scripts/install-dynamo.sh installs the tested release",
        ),
        Err(missing) => Finding::problem(
            "Dynamo",
            false,
            format!(
                "not found ({}): {}; only tests that start a Dynamo stack need it",
                missing.how_found, missing.problem
            ),
            "export DYNAMO_PYTHON=$(bash scripts/install-dynamo.sh)",
        ),
    }
}

fn state_dir() -> Finding {
    // Shared services keep their files there (reservations do not).
    match admin::ensure_state_subdir("services") {
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

fn output_dir(root: &Result<OutputRoot, String>) -> Finding {
    let root = match root {
        Ok(root) => root,
        Err(e) => {
            return Finding::problem("output dir", true, e.clone(), "fix DYNAMO_TEST_OUTPUT_DIR")
        }
    };
    let dir = &root.path;
    let probe = dir.join(".doctor-write-check");
    let writable = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    if writable {
        Finding::ok(
            "output dir",
            format!("{} (writable; from {})", dir.display(), root.source),
        )
    } else {
        Finding::problem(
            "output dir",
            true,
            format!("{} (from {}) is not writable", dir.display(), root.source),
            "set DYNAMO_TEST_OUTPUT_DIR to a writable directory",
        )
    }
}

fn ranges() -> Finding {
    let ephemeral = ephemeral_range();
    let shown = ephemeral.map_or("unknown".to_string(), |r| r.to_string());
    match (PortRange::dynamic_from_env(), ephemeral) {
        (Err(e), _) => Finding::problem(
            "port ranges",
            true,
            e.to_string(),
            "set DYNAMO_TEST_PORT_RANGE=LOW-HIGH below the ephemeral range",
        ),
        (Ok(r), Some(e)) if r.low <= e.high && e.low <= r.high => Finding::problem(
            "port ranges",
            true,
            format!(
                "the dynamic range {r} overlaps the kernel's ephemeral range {e}: the kernel may \
                 give a reserved port to an outgoing connection or to bind(0)"
            ),
            &format!(
                "set DYNAMO_TEST_PORT_RANGE to a range that ends below {}, or unset it",
                e.low
            ),
        ),
        (Ok(r), _) => Finding::ok(
            "port ranges",
            format!("dynamic {r} ({} ports), kernel ephemeral {shown}", r.len()),
        ),
    }
}

/// Fixed ports must lie outside the dynamic range: a test process with
/// other settings would reserve them for its own servers. (Bad values, two
/// equal fixed ports included, are reported by the range and plan checks.)
fn plan_conflicts() -> Vec<Finding> {
    let (Ok(plan), Ok(range)) = (ServicePorts::from_env(), PortRange::dynamic_from_env()) else {
        return Vec::new();
    };
    let named = plan.named_fixed_ports();
    let mut found = Vec::new();
    for (name, port) in named.iter() {
        if range.contains(*port) {
            found.push(Finding::problem(
                "port plan",
                true,
                format!(
                    "{name} {port} lies in the dynamic range {range}, from which tests reserve their ports"
                ),
                &format!(
                    "set {} outside {range} (the default is below it), or move DYNAMO_TEST_PORT_RANGE",
                    port_var(name)
                ),
            ));
        }
    }
    if found.is_empty() {
        found.push(Finding::ok(
            "port plan",
            format!("fixed ports outside the dynamic range {range}"),
        ));
    }
    found
}

/// `etcd_client` -> `DYNAMO_TEST_ETCD_CLIENT_PORT`.
fn port_var(name: &str) -> String {
    format!("DYNAMO_TEST_{}_PORT", name.to_uppercase())
}

/// Who listens on `ports` (a scan of every process's fds: only for a problem).
fn holders_of(ports: [u16; 2]) -> String {
    let found: Vec<String> = ports
        .iter()
        .flat_map(|p| admin::listeners(*p))
        .map(|l| l.to_string())
        .collect();
    found.join(", ")
}

/// A fixed port held by something that is not a healthy etcd/NATS blocks the tests.
async fn fixed_ports() -> Vec<Finding> {
    let plan = match ServicePorts::from_env() {
        Ok(p) => p,
        Err(e) => {
            return vec![Finding::problem(
                "port plan",
                true,
                e.to_string(),
                &format!("fix or unset {}", e.name),
            )]
        }
    };
    let mut found = Vec::new();
    for kind in [ServiceKind::Etcd, ServiceKind::Nats] {
        let ports = kind.fixed_ports(&plan);
        let topic = format!("{} ports {}/{}", kind.name(), ports.client, ports.second);
        if !admin::is_listening(ports.client) && !admin::is_listening(ports.second) {
            found.push(Finding::ok(&topic, "free".into()));
        } else if kind.healthy_now(ports).await {
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
                    holders_of([ports.client, ports.second]),
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
    let sweep = match admin::find_orphans() {
        Ok(sweep) => sweep,
        Err(e) => {
            found.push(Finding::problem(
                "orphan processes",
                false,
                e.to_string(),
                "run the doctor where /proc shows its own PID namespace",
            ));
            Default::default()
        }
    };
    for orphan in sweep.orphans {
        found.push(Finding::problem(
            "orphan process",
            false,
            format!(
                "pid {} `{}` ({}) outlived its test (pid {})",
                orphan.pid, orphan.name, orphan.command, orphan.owner.pid
            ),
            "dynamo-test clean",
        ));
    }
    for (orphan, why) in sweep.left_alone {
        found.push(Finding::problem(
            "orphan process (not ours)",
            false,
            format!(
                "pid {} `{}` ({}) outlived its test (pid {}), but {why}",
                orphan.pid, orphan.name, orphan.command, orphan.owner.pid
            ),
            "run `dynamo-test clean` as its user, in its PID namespace",
        ));
    }
    let services_dir = admin::ensure_state_subdir("services");
    for service in services_dir.map(|d| stale::find(&d)).unwrap_or_default() {
        found.push(Finding::problem(
            "stale service",
            false,
            service.describe(),
            "dynamo-test clean (stops it once no test uses it)",
        ));
    }
    let services_dir = admin::ensure_state_subdir("services");
    for record in services_dir
        .map(|d| crate::clean::legacy_records(&d))
        .unwrap_or_default()
    {
        if !record.keeper.is_some_and(admin::is_keeper) {
            found.push(Finding::problem(
                "stale service record",
                false,
                format!(
                    "{} (of an earlier harness version; its keeper is gone)",
                    record.path.display()
                ),
                "dynamo-test clean",
            ));
        }
    }
    for record in admin::records().unwrap_or_default() {
        if let Some(problem) = &record.problem {
            found.push(Finding::problem(
                "shared service",
                true,
                format!(
                    "the keeper of {} on port {} (pid {}, uid {}) cannot be joined: {problem}",
                    record.name,
                    record.port,
                    record.keeper_pid.map_or("?".into(), |p| p.to_string()),
                    record.keeper_uid.map_or("?".into(), |u| u.to_string()),
                ),
                "use one dynamo-test version everywhere this network is shared, or move the plan's ports",
            ));
        }
    }
    if found.is_empty() {
        found.push(Finding::ok(
            "leftovers",
            "no orphan processes, no keeper-less services, no stale service records, \
             no keeper this harness cannot join"
                .into(),
        ));
    }
    found
}
