//! `dynamo-test clean`: remove what the harness left that no live process owns.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use dynamo_test::process::sweep;
use dynamo_test::services;
use serde_json::json;

use crate::output::Out;

/// One thing to remove.
struct Item {
    what: String,
    path: Option<PathBuf>,
    pid: Option<u32>,
}

pub fn run(out: &Out, dry_run: bool, days: u64) -> i32 {
    let mut items = old_output_dirs(days);
    items.extend(stale_service_files());
    let orphans = sweep::find_orphans();
    items.extend(orphans.iter().map(|o| Item {
        what: format!(
            "orphan process pid {} `{}` ({}), owner pid {} is gone",
            o.pid, o.name, o.command, o.owner_pid
        ),
        path: None,
        pid: Some(o.pid),
    }));
    if !dry_run {
        for item in &items {
            if let Some(path) = &item.path {
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                };
            }
        }
        sweep::stop_orphans(&orphans);
    }
    if out.json {
        let list: Vec<_> = items
            .iter()
            .map(|i| json!({"what": i.what, "path": i.path.as_ref().map(|p| p.display().to_string()), "pid": i.pid}))
            .collect();
        out.json(&json!({"dry_run": dry_run, "removed": list}));
    } else {
        let verb = if dry_run { "would remove" } else { "removed" };
        if items.is_empty() {
            println!("nothing to clean");
        }
        for i in &items {
            println!("{verb}: {}", i.what);
        }
    }
    0
}

/// Per-test output directories not modified for `days` days.
fn old_output_dirs(days: u64) -> Vec<Item> {
    let Ok(root) = dynamo_test::output_root() else {
        return Vec::new();
    };
    let limit = Duration::from_secs(days * 86_400);
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && older_than(p, limit))
        .map(|p| Item {
            what: format!("output directory {} (older than {days} days)", p.display()),
            path: Some(p),
            pid: None,
        })
        .collect()
}

fn older_than(path: &Path, limit: Duration) -> bool {
    let modified = std::fs::metadata(path).and_then(|m| m.modified());
    modified.is_ok_and(|m| SystemTime::now().duration_since(m).unwrap_or_default() > limit)
}

/// Service records whose keeper is gone, and service data directories
/// that no running process names on its command line.
fn stale_service_files() -> Vec<Item> {
    let records = services::records().unwrap_or_default();
    let mut items: Vec<Item> = records
        .iter()
        .filter(|r| !r.keeper_alive)
        .map(|r| Item {
            what: format!("stale service record {}", r.path.display()),
            path: Some(r.path.clone()),
            pid: None,
        })
        .collect();
    let Some(dir) = records
        .first()
        .map(|r| r.path.with_file_name(""))
        .or_else(services_dir)
    else {
        return items;
    };
    let command_lines = all_command_lines();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let shown = path.display().to_string();
            // A service (or its keeper) names its data dir in its arguments.
            let in_use = command_lines.iter().any(|c| c.contains(&shown));
            if name.contains("-data-") && !in_use {
                items.push(Item {
                    what: format!("data directory of a stopped service {}", path.display()),
                    path: Some(path),
                    pid: None,
                });
            }
        }
    }
    items
}

fn services_dir() -> Option<PathBuf> {
    dynamo_test::state_dir::ensure_state_subdir("services").ok()
}

/// The command line of every process we can see.
fn all_command_lines() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(dynamo_test::ports::holders::command_line)
        .collect()
}
