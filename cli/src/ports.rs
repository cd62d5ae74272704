//! `dynamo-test ports`: the plan, who holds the fixed ports (and which
//! keeper runs the shared service there, whoever started it), live
//! reservations (of every user and container sharing this network).

use std::time::{Duration, SystemTime};

use dynamo_test::admin::ServiceKind;
use dynamo_test::admin::{self, live_reservations};
use dynamo_test::ServicePorts;
use serde_json::{json, Value};

use crate::output::{age, Out};

/// Runs `ports`; the exit code: 1 if the port plan is invalid.
pub async fn run(out: &Out) -> i32 {
    let plan = match ServicePorts::from_env() {
        Ok(p) => p,
        Err(e) => return crate::fail(out, &e.to_string()),
    };
    let fixed = fixed_ports(&plan).await;
    let (reservations, listing_error) = match reservations() {
        Ok(r) => (r, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    if out.json {
        out.json(&json!({
            "plan": {
                "etcd_client": plan.etcd_client, "etcd_peer": plan.etcd_peer,
                "nats_client": plan.nats_client, "nats_http": plan.nats_http,
                "dynamo_serve_base": plan.dynamo_serve_base,
            },
            "fixed": fixed,
            "reservations": reservations,
            "reservations_error": listing_error,
        }));
        return 0;
    }
    out.heading("Fixed ports (the port plan)");
    let mut rows: Vec<Vec<String>> = fixed.iter().map(|f| fixed_row(out, f)).collect();
    rows.push(vec![
        "dynamo_serve".into(),
        format!("{}+", plan.dynamo_serve_base),
        "dynamic".into(),
        "-".into(),
        "first free port per test".into(),
    ]);
    out.table(&["name", "port", "state", "health", "holder"], &rows);
    println!();
    out.heading("Live reservations");
    if let Some(e) = &listing_error {
        println!("  {}", out.bad(&format!("unknown: {e}")));
    } else if reservations.is_empty() {
        println!("  none");
    }
    let rows: Vec<Vec<String>> = reservations
        .iter()
        .map(|r| {
            let pid = r["pid"].as_u64().map_or("?".into(), |p| p.to_string());
            let pid = match r["same_pid_namespace"].as_bool() {
                Some(false) => format!("{pid} (other PID ns)"),
                _ => pid,
            };
            vec![
                r["port"].to_string(),
                pid,
                r["test"].as_str().unwrap_or("?").to_string(),
                r["age_ms"]
                    .as_u64()
                    .map_or("?".into(), |ms| age(Duration::from_millis(ms))),
                r["command"].as_str().map_or("-".into(), |c| shorten(c, 50)),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.table(&["port", "pid", "test", "age", "command"], &rows);
    }
    0
}

fn fixed_row(out: &Out, f: &Value) -> Vec<String> {
    let state = if f["listening"].as_bool() == Some(true) {
        out.warn("listening")
    } else {
        out.good("free")
    };
    let health = match f["healthy"].as_bool() {
        Some(true) => out.good("healthy"),
        Some(false) => out.bad("unhealthy"),
        None => "-".into(),
    };
    let mut holders: Vec<String> = f["holders"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .map(|h| shorten(h["text"].as_str().unwrap_or("?"), 70))
                .collect()
        })
        .unwrap_or_default();
    let keeper = &f["keeper"];
    if !keeper.is_null() {
        holders.push(match keeper["problem"].as_str() {
            Some(problem) => format!("keeper pid {} ({problem})", keeper["pid"]),
            None => format!(
                "keeper pid {} uid {}, {} users, {} pins",
                keeper["pid"], keeper["uid"], keeper["users"], keeper["pins"]
            ),
        });
    }
    vec![
        f["name"].as_str().unwrap_or("?").to_string(),
        f["port"].to_string(),
        state,
        health,
        holders.join("; "),
    ]
}

/// Each fixed port: listening or not, by whom, and (client ports) healthy or not.
async fn fixed_ports(plan: &ServicePorts) -> Vec<Value> {
    let mut rows = Vec::new();
    let keepers = admin::records().unwrap_or_default();
    for (name, port) in plan.named_fixed_ports() {
        let listeners = admin::listeners(port);
        let kind = match name {
            "etcd_client" => Some(ServiceKind::Etcd),
            "nats_client" => Some(ServiceKind::Nats),
            _ => None,
        };
        let healthy = match kind {
            Some(kind) if !listeners.is_empty() => {
                Some(kind.healthy_now(kind.fixed_ports(plan)).await)
            }
            _ => None,
        };
        let keeper = kind
            .and_then(|k| keepers.iter().find(|r| r.name == k.name() && r.port == port))
            .map(|r| {
                json!({"pid": r.keeper_pid, "uid": r.keeper_uid, "service_pid": r.service_pid,
                       "users": r.users, "pins": r.pins, "harness": r.harness, "problem": r.problem})
            });
        rows.push(json!({
            "name": name,
            "port": port,
            "listening": !listeners.is_empty(),
            "healthy": healthy,
            "holders": listeners.iter().map(|l| json!({"pid": l.pid, "command": l.command, "text": l.to_string()})).collect::<Vec<_>>(),
            "keeper": keeper,
        }));
    }
    rows
}

/// Every live reservation as JSON, or why they cannot be listed.
fn reservations() -> Result<Vec<Value>, String> {
    let now = SystemTime::now();
    let live = live_reservations().map_err(|e| e.to_string())?;
    Ok(live
        .iter()
        .map(|r| {
            let holder = r.holder.as_ref();
            json!({
                "port": r.port,
                "pid": holder.map(|h| h.pid),
                "pid_namespace": holder.and_then(|h| h.pid_namespace),
                "same_pid_namespace": holder.map(|h| h.in_our_pid_namespace()),
                "command": holder.and_then(|h| h.command.clone()),
                "test": holder.map(|h| h.label.clone()),
                "age_ms": holder.and_then(|h| now.duration_since(h.since).ok()).map(|d| d.as_millis() as u64),
            })
        })
        .collect())
}

/// Long command lines are cut in tables (JSON keeps them whole).
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}...")
}
