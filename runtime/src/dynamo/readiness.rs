//! When a stack is routable, and the story when it does not get there.

use super::plan::StackPlan;
use super::stack::{served_models, StackWorker};
use crate::error::Error;
use crate::health::{self, Check, Probe};
use crate::process::ManagedProcess;

/// Log lines of each process in a stack's failure report.
const TAIL_LINES: usize = 20;

/// Routable: every worker alive, the frontend healthy with all of them
/// (of this namespace: its `/health` lists every namespace's), every
/// model listed and answering a one-token completion.
pub(super) fn routable(base_url: &str, namespace: &str, workers: &[StackWorker]) -> health::All {
    let models = served_models(workers);
    let frontend = health::dynamo_frontend(base_url)
        .namespace(namespace)
        .min_workers(workers.len());
    let mut probes: Vec<Box<dyn Probe>> =
        vec![Box::new(workers_alive(workers)), Box::new(frontend)];
    probes.push(Box::new(health::openai_models(base_url, models.clone())));
    for model in &models {
        probes.push(Box::new(health::openai_completion(base_url, model)));
    }
    health::all(probes)
}

/// Fatal as soon as a worker has exited: waiting on would only time out.
fn workers_alive(workers: &[StackWorker]) -> impl Probe {
    let processes: Vec<(String, ManagedProcess)> = workers
        .iter()
        .map(|w| (w.name().to_string(), w.process().clone()))
        .collect();
    health::from_fn("every worker running", move || {
        let exited = processes
            .iter()
            .find_map(|(name, p)| Some((name.clone(), p.exit_status()?)));
        async move {
            match exited {
                Some((name, status)) => Check::fatal(format!("worker `{name}` exited ({status})")),
                None => Check::Ready,
            }
        }
    })
}

/// The story of a stack that did not become routable: why, what a worker
/// must do to count, and every worker's log tail (the frontend's is in
/// `why` when the frontend's wait failed).
pub(super) fn not_routable(plan: &StackPlan, why: &str, workers: &[StackWorker]) -> Error {
    let mut story = format!(
        "the Dynamo stack `{}` did not become routable: {why}\n\
         (a worker counts once it registers `{}`; the stack sets DYN_NAMESPACE={} for it)",
        plan.namespace,
        plan.endpoint(),
        plan.namespace
    );
    for worker in workers {
        let process = worker.process();
        let state = match process.exit_status() {
            Some(status) => format!("exited: {status}"),
            None => "running".to_string(),
        };
        story.push_str(&format!(
            "\n--- worker `{}` ({state}), log {}:\n{}",
            worker.name(),
            process.log_path().display(),
            process.log_tail(TAIL_LINES)
        ));
    }
    Error::Dynamo(story)
}
