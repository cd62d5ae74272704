//! The failure report as Markdown, from plain facts (unit-tested here).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::context::TeardownStep;
use crate::inject::{KeysSeen, ServiceFacts};

/// Everything a report says.
pub(super) struct ReportFacts {
    pub name: String,
    pub verdict: String,
    pub output_dir: PathBuf,
    pub ports: Vec<(String, u16)>,
    pub processes: Vec<ProcessFacts>,
    pub services: Services,
    pub teardown: Vec<TeardownStep>,
    /// Whether teardown has finished (else the report was written before it).
    pub teardown_done: bool,
}

/// What is known of the test's services.
pub(super) enum Services {
    Observed(Vec<ServiceFacts>),
    /// Nothing was observed before teardown (the body passed and a
    /// teardown step failed, or the test ended before it could run).
    NotObserved,
    /// The services did not answer within this limit.
    NoAnswer(Duration),
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
    let _ = writeln!(out, "# Failure report: {}\n", code(&facts.name));
    let _ = writeln!(out, "**Verdict:**\n\n{}", fenced(&facts.verdict));
    let _ = writeln!(
        out,
        "Output directory: {}\n",
        code(&facts.output_dir.display().to_string())
    );
    ports(&mut out, &facts.ports);
    processes(&mut out, &facts.processes);
    services(&mut out, &facts.services);
    teardown(&mut out, &facts.teardown, facts.teardown_done);
    out
}

/// `text` as a Markdown code span, whatever backticks it holds.
fn code(text: &str) -> String {
    let ticks = "`".repeat(longest_backtick_run(text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// `text` as a fenced block that no line of it can close.
fn fenced(text: &str) -> String {
    let fence = "`".repeat((longest_backtick_run(text) + 1).max(3));
    format!("{fence}text\n{}\n{fence}\n", text.trim_end())
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// `text` in one table cell: no line breaks, no cell separators.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn ports(out: &mut String, ports: &[(String, u16)]) {
    let _ = writeln!(out, "## Ports\n");
    if ports.is_empty() {
        let _ = writeln!(out, "none\n");
        return;
    }
    let _ = writeln!(out, "| name | port |\n|---|---|");
    for (name, port) in ports {
        let _ = writeln!(out, "| {} | {port} |", cell(name));
    }
    out.push('\n');
}

fn processes(out: &mut String, processes: &[ProcessFacts]) {
    let _ = writeln!(out, "## Processes\n");
    if processes.is_empty() {
        let _ = writeln!(out, "none\n");
    }
    for p in processes {
        let _ = writeln!(out, "### {} (pid {})\n", code(&p.name), p.pid);
        let _ = writeln!(out, "- command: {}", code(&p.command));
        let _ = writeln!(out, "- ended: {}", p.ended);
        let _ = writeln!(out, "- log: {}\n", code(&p.log.display().to_string()));
        let _ = writeln!(out, "last lines of its log:\n\n{}", fenced(&p.tail));
    }
}

fn services(out: &mut String, services: &Services) {
    let _ = writeln!(out, "## Services\n");
    let services = match services {
        Services::Observed(s) => s,
        Services::NotObserved => {
            let _ = writeln!(out, "not observed before teardown\n");
            return;
        }
        Services::NoAnswer(limit) => {
            let _ = writeln!(out, "not observed: no answer within {limit:?}\n");
            return;
        }
    };
    if services.is_empty() {
        let _ = writeln!(out, "none\n");
    }
    for s in services {
        let _ = writeln!(out, "### {}\n", s.kind);
        let _ = writeln!(out, "- at: {}", code(&s.endpoints));
        let _ = writeln!(out, "- from: {}", s.origin);
        match &s.health {
            Ok(()) => {
                let _ = writeln!(out, "- healthy at the end");
            }
            Err(why) => {
                let _ = writeln!(out, "- NOT healthy at the end:\n\n{}", fenced(why));
            }
        }
        if let Some(note) = &s.note {
            let _ = writeln!(out, "- what became of it:\n\n{}", fenced(note));
        }
        match &s.keys {
            None => {}
            Some(Err(why)) => {
                let _ = writeln!(
                    out,
                    "- keys under the test's prefix: could not list: {}",
                    cell(why)
                );
            }
            Some(Ok(KeysSeen {
                prefix,
                shown,
                total,
            })) => {
                let _ = writeln!(
                    out,
                    "- keys under the test's prefix {}: {total} (first {} shown)",
                    code(prefix),
                    shown.len()
                );
                for key in shown {
                    let _ = writeln!(out, "  - {}", code(key));
                }
            }
        }
        out.push('\n');
    }
}

fn teardown(out: &mut String, steps: &[TeardownStep], done: bool) {
    let _ = writeln!(out, "## Teardown\n");
    if !done {
        let _ = writeln!(
            out,
            "not finished when this was written (a later report replaces this one)\n"
        );
    }
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
        let _ = writeln!(
            out,
            "| {} | {:.1?} | {} |",
            cell(&step.label),
            step.took,
            cell(&outcome)
        );
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
            services: Services::Observed(vec![ServiceFacts {
                kind: "etcd",
                endpoints: "http://127.0.0.1:2379".into(),
                origin: "private to this test".into(),
                health: Err("connection refused".into()),
                note: Some("it died: killed by signal 9".into()),
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
            teardown_done: true,
        };
        let text = render(&facts);
        for expected in [
            "# Failure report: `suite::t`",
            "**Verdict:**\n\n```text\nreturned an error: boom\n```",
            "| api | 20001 |",
            "### `frontend` (pid 42)",
            "- command: `python -m dynamo.frontend`",
            "- ended: signal: 15 (SIGTERM)",
            "listening",
            "NOT healthy at the end:\n\n```text\nconnection refused\n```",
            "it died: killed by signal 9",
            "keys under the test's prefix `t-1/`: 1 (first 1 shown)",
            "  - `t-1/a`",
            "| stop process `frontend` | 12.0ms | ok |",
        ] {
            assert!(text.contains(expected), "{expected:?} in:\n{text}");
        }
        let early = ReportFacts {
            services: Services::NotObserved,
            processes: vec![],
            teardown_done: false,
            ..facts
        };
        let text = render(&early);
        assert!(text.contains("not observed before teardown"), "{text}");
        assert!(
            text.contains("not finished when this was written"),
            "{text}"
        );
    }

    #[test]
    fn text_cannot_break_the_markdown() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(fenced("```\nx"), "````text\n```\nx\n````\n");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
