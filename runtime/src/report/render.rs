//! The failure report as Markdown, from plain facts (unit-tested here).

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::context::TeardownStep;
use crate::inject::{KeysSeen, ServiceFacts};

/// Everything a report says.
pub(super) struct ReportFacts {
    pub name: String,
    pub verdict: String,
    pub output_dir: PathBuf,
    pub ports: Vec<(String, u16)>,
    pub processes: Vec<ProcessFacts>,
    /// `None` when they were not observed before teardown (a body that
    /// passed, then a teardown that failed).
    pub services: Option<Vec<ServiceFacts>>,
    pub teardown: Vec<TeardownStep>,
}

/// One process the test started.
pub(super) struct ProcessFacts {
    pub name: String,
    pub pid: u32,
    pub command: String,
    pub ended: String,
    pub log: PathBuf,
    pub tail: String,
}

pub(super) fn render(facts: &ReportFacts) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Failure report: `{}`\n", facts.name);
    let _ = writeln!(out, "**Verdict:** {}\n", facts.verdict);
    let _ = writeln!(out, "Output directory: `{}`\n", facts.output_dir.display());
    ports(&mut out, &facts.ports);
    processes(&mut out, &facts.processes);
    services(&mut out, facts.services.as_deref());
    teardown(&mut out, &facts.teardown);
    out
}

fn ports(out: &mut String, ports: &[(String, u16)]) {
    let _ = writeln!(out, "## Ports\n");
    if ports.is_empty() {
        let _ = writeln!(out, "none\n");
        return;
    }
    let _ = writeln!(out, "| name | port |\n|---|---|");
    for (name, port) in ports {
        let _ = writeln!(out, "| {name} | {port} |");
    }
    out.push('\n');
}

fn processes(out: &mut String, processes: &[ProcessFacts]) {
    let _ = writeln!(out, "## Processes\n");
    if processes.is_empty() {
        let _ = writeln!(out, "none\n");
    }
    for p in processes {
        let _ = writeln!(out, "### `{}` (pid {})\n", p.name, p.pid);
        let _ = writeln!(out, "- command: `{}`", p.command);
        let _ = writeln!(out, "- ended: {}", p.ended);
        let _ = writeln!(out, "- log: `{}`\n", p.log.display());
        let _ = writeln!(out, "```text\n{}\n```\n", p.tail.trim_end());
    }
}

fn services(out: &mut String, services: Option<&[ServiceFacts]>) {
    let _ = writeln!(out, "## Services\n");
    let Some(services) = services else {
        let _ = writeln!(
            out,
            "not observed before teardown (the body passed and teardown failed)\n"
        );
        return;
    };
    if services.is_empty() {
        let _ = writeln!(out, "none\n");
    }
    for s in services {
        let _ = writeln!(out, "### {}\n", s.kind);
        let _ = writeln!(out, "- at: {}", s.endpoints);
        let _ = writeln!(out, "- from: {}", s.origin);
        let health = match &s.health {
            Ok(()) => "healthy at the end".to_string(),
            Err(why) => format!("NOT healthy at the end: {why}"),
        };
        let _ = writeln!(out, "- {health}");
        match &s.keys {
            None => {}
            Some(Err(why)) => {
                let _ = writeln!(out, "- keys under the test's prefix: could not list: {why}");
            }
            Some(Ok(KeysSeen {
                prefix,
                shown,
                total,
            })) => {
                let _ = writeln!(
                    out,
                    "- keys under the test's prefix `{prefix}`: {total} (first {} shown)",
                    shown.len()
                );
                for key in shown {
                    let _ = writeln!(out, "  - `{key}`");
                }
            }
        }
        out.push('\n');
    }
}

fn teardown(out: &mut String, steps: &[TeardownStep]) {
    let _ = writeln!(out, "## Teardown\n");
    if steps.is_empty() {
        let _ = writeln!(out, "no steps\n");
        return;
    }
    let _ = writeln!(out, "| step | took | outcome |\n|---|---|---|");
    for step in steps {
        let outcome = match step.problems.is_empty() {
            true => "ok".to_string(),
            false => step.problems.join("; ").replace('\n', " "),
        };
        let _ = writeln!(out, "| {} | {:.1?} | {outcome} |", step.label, step.took);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_section_is_there() {
        let facts = ReportFacts {
            name: "suite::t".into(),
            verdict: "returned an error: boom".into(),
            output_dir: "/out/t/1".into(),
            ports: vec![("api".into(), 20001)],
            processes: vec![ProcessFacts {
                name: "frontend".into(),
                pid: 42,
                command: "python -m dynamo.frontend".into(),
                ended: "signal: 15 (SIGTERM)".into(),
                log: "/out/t/1/frontend.log".into(),
                tail: "listening\n".into(),
            }],
            services: Some(vec![ServiceFacts {
                kind: "etcd",
                endpoints: "http://127.0.0.1:2379".into(),
                origin: "private to this test".into(),
                health: Err("connection refused".into()),
                keys: Some(Ok(KeysSeen {
                    prefix: "t-1/".into(),
                    shown: vec!["t-1/a".into()],
                    total: 1,
                })),
            }]),
            teardown: vec![TeardownStep {
                label: "stop process `frontend`".into(),
                took: Duration::from_millis(12),
                problems: vec![],
            }],
        };
        let text = render(&facts);
        for expected in [
            "# Failure report: `suite::t`",
            "**Verdict:** returned an error: boom",
            "| api | 20001 |",
            "### `frontend` (pid 42)",
            "- command: `python -m dynamo.frontend`",
            "- ended: signal: 15 (SIGTERM)",
            "listening",
            "NOT healthy at the end: connection refused",
            "keys under the test's prefix `t-1/`: 1 (first 1 shown)",
            "  - `t-1/a`",
            "| stop process `frontend` | 12.0ms | ok |",
        ] {
            assert!(text.contains(expected), "{expected:?} in:\n{text}");
        }
        let blocked = ReportFacts {
            services: None,
            processes: vec![],
            ..facts
        };
        assert!(render(&blocked).contains("not observed"));
    }
}
