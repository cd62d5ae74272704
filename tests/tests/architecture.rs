//! The runtime's house rules, checked on its source: imports between its
//! top-level modules (a file or folder directly under `runtime/src`) run
//! one way, down the layers of design.md, so there is no cycle.
//!
//! A module "uses" another when any of its files names it: `crate::m`,
//! `crate::{m, ..}`, `super::..::m` climbing to the crate root, or an item
//! the crate root re-exports from `m` (`crate::TestContext` is `context`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top to bottom: a module may use only modules after it.
const LAYERS: &[&str] = &[
    "admin",
    "runner",
    "report",
    "inject",
    "context",
    "dynamo",
    "services",
    "output_dir",
    "error",
    "process",
    "ports",
    "health",
    "state_dir",
    "env",
    "duration",
    "sys",
];

type Graph = BTreeMap<String, BTreeSet<String>>;

fn runtime_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/src")
}

/// `module -> the modules it uses`.
fn module_graph(src: &Path) -> Graph {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let reexports = root_reexports(&lib);
    let mut graph = Graph::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let Some(module) = module_name(&path) else {
            continue;
        };
        let mut used = BTreeSet::new();
        for file in rust_files(&path) {
            let text = std::fs::read_to_string(&file).unwrap();
            let depth = file.strip_prefix(src).unwrap().components().count() - 1;
            for name in named_from_root(&text, depth) {
                let target = reexports.get(&name).cloned().unwrap_or(name);
                if target != module && is_module(src, &target) {
                    used.insert(target);
                }
            }
        }
        graph.insert(module, used);
    }
    graph
}

/// What `pub use m::{A, B}` / `pub use m::A` in lib.rs makes `crate::A` mean.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for statement in lib.split(';') {
        let Some(at) = statement.find("pub use ") else {
            continue;
        };
        let path = statement[at + "pub use ".len()..].trim();
        let path = path.strip_prefix("crate::").unwrap_or(path);
        let Some((module, rest)) = path.split_once("::") else {
            continue;
        };
        let items = rest.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim();
            let name = item.rsplit("::").next().unwrap_or(item);
            let name = name.split(" as ").last().unwrap_or(name).trim();
            if !name.is_empty() {
                map.entry(name.to_string())
                    .or_insert_with(|| module.trim().to_string());
            }
        }
    }
    map
}

/// The first path segment after every `crate::` (each one of a
/// `crate::{a, b::c}` group), and after `super::` chains that climb to the
/// root from a file `depth` folders below `src`.
fn named_from_root(text: &str, depth: usize) -> Vec<String> {
    let mut names = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        if text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `dynamo_crate::`, `$crate::`
        }
        names.extend(segments_after(&text[i + "crate::".len()..]));
    }
    let climb_to_root = "super::".repeat(depth + 1);
    if depth > 0 {
        for (i, _) in text.match_indices(&climb_to_root) {
            names.extend(segments_after(&text[i + climb_to_root.len()..]));
        }
    }
    names
}

/// `m::..` -> [m]; `{a, b::c}` -> [a, b].
fn segments_after(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    if let Some(group) = rest.strip_prefix('{') {
        let end = group.find('}').unwrap_or(group.len());
        group[..end]
            .split(',')
            .map(ident)
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        vec![ident(rest)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect()
    }
}

fn module_name(path: &Path) -> Option<String> {
    let name = path.file_stem()?.to_str()?.to_string();
    let is_rs = path.extension().is_some_and(|e| e == "rs");
    (path.is_dir() || (is_rs && name != "lib")).then_some(name)
}

fn is_module(src: &Path, name: &str) -> bool {
    src.join(format!("{name}.rs")).is_file() || src.join(name).is_dir()
}

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        files.extend(rust_files(&entry.unwrap().path()));
    }
    files
}

/// Every use that does not go down the layers, as `a -> b`.
fn upward_uses(graph: &Graph) -> Vec<String> {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut wrong = Vec::new();
    for (module, used) in graph {
        for target in used {
            match (rank(module), rank(target)) {
                (Some(a), Some(b)) if a < b => {}
                _ => wrong.push(format!("{module} -> {target}")),
            }
        }
    }
    wrong
}

#[test]
fn the_runtime_modules_import_down_the_layers() {
    let graph = module_graph(&runtime_src());
    let unplaced: Vec<&String> = graph
        .keys()
        .filter(|m| !LAYERS.contains(&m.as_str()))
        .collect();
    assert!(unplaced.is_empty(), "modules not in LAYERS: {unplaced:?}");
    let wrong = upward_uses(&graph);
    assert!(
        wrong.is_empty(),
        "imports against the layers: {wrong:?}\n{graph:#?}"
    );
    assert!(graph["context"].contains("services"), "{graph:#?}");
    assert!(graph["sys"].is_empty(), "sys imports {:?}", graph["sys"]);
}

#[test]
fn the_checker_sees_every_way_of_naming_a_module() {
    let reexports = root_reexports(
        "pub use context::{TestContext, WaitFor};\npub use ports::{find_free_port, Port as P};\n\
         pub mod __private { pub use crate::{TestContext}; pub use crate::runner::run; }",
    );
    assert_eq!(reexports["TestContext"], "context");
    assert_eq!(reexports["P"], "ports");
    assert_eq!(reexports["run"], "runner");
    let names = named_from_root(
        "use crate::TestContext; use crate::{inject::Inject, ports};\n\
         use super::super::context::x; let _ = $crate::ignored; dynamo_crate::no;",
        1,
    );
    assert_eq!(names, ["TestContext", "inject", "ports", "context"]);
    let mut graph = Graph::new();
    graph.insert("ports".into(), ["context".to_string()].into());
    graph.insert("context".into(), ["ports".to_string()].into());
    assert_eq!(upward_uses(&graph), ["ports -> context"]);
}

/// The crates on top (the command, the Python binding) use the runtime's
/// public API and `admin` only: never the macro's `__private` items, which
/// may change at any release.
#[test]
fn the_command_and_the_python_binding_stay_off_the_private_api() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut offenders = Vec::new();
    for crate_src in ["cli/src", "python/src"] {
        let files = rust_files(&root.join(crate_src));
        assert!(!files.is_empty(), "no sources under {crate_src}");
        for file in files {
            if std::fs::read_to_string(&file)
                .unwrap()
                .contains("__private")
            {
                offenders.push(file.display().to_string());
            }
        }
    }
    assert!(offenders.is_empty(), "they name __private: {offenders:?}");
}
