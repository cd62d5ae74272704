//! A worker of a stack, as the test describes it: the mocker (a CPU
//! stand-in for an engine) or any worker command.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::plan::StackPlan;

/// One worker a [`StackBuilder`](super::StackBuilder) starts.
///
/// Every worker gets the stack's env (namespace, discovery, request plane,
/// loopback hosts), its own reserved `DYN_SYSTEM_PORT` (at most 32767) and
/// its own log. [`Worker::serves`] names the models the stack waits for.
///
/// ```no_run
/// use dynamo_test::dynamo::Worker;
/// // An engine worker of your own, serving `my-model` on the stack's
/// // namespace (Dynamo workers read `DYN_NAMESPACE`):
/// let worker = Worker::python_module("dynamo.vllm")
///     .args(["--model", "/models/my-model"])
///     .serves("my-model");
/// ```
#[derive(Debug, Clone)]
pub struct Worker {
    pub(super) name: Option<String>,
    kind: Kind,
    pub(super) models: Vec<String>,
    args: Vec<OsString>,
    pub(super) env: Vec<(OsString, OsString)>,
}

#[derive(Debug, Clone)]
enum Kind {
    Mocker { model: String, dir: PathBuf },
    PythonModule(String),
    Program(OsString),
}

impl Worker {
    /// `python -m dynamo.mocker` serving `model` from `model_dir` (see
    /// [`tiny_model`](super::tiny_model)) on the stack's endpoint, as fast
    /// as it goes (`--speedup-ratio 0`).
    pub fn mocker(model: &str, model_dir: impl AsRef<Path>) -> Worker {
        Worker::new(Kind::Mocker {
            model: model.to_string(),
            dir: model_dir.as_ref().to_path_buf(),
        })
        .serves(model)
    }

    /// `python -m <module>`, run by the stack's Dynamo interpreter.
    pub fn python_module(module: &str) -> Worker {
        Worker::new(Kind::PythonModule(module.to_string()))
    }

    /// Any program.
    pub fn program(program: impl Into<OsString>) -> Worker {
        Worker::new(Kind::Program(program.into()))
    }

    fn new(kind: Kind) -> Worker {
        Worker {
            name: None,
            kind,
            models: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The process's name in logs (default `mocker-1`, `worker-2`, ...).
    pub fn name(mut self, name: impl Into<String>) -> Worker {
        self.name = Some(name.into());
        self
    }

    /// A model this worker serves: the stack is routable only when the
    /// frontend lists it and answers a one-token completion for it.
    pub fn serves(mut self, model: impl Into<String>) -> Worker {
        let model = model.into();
        if !self.models.contains(&model) {
            self.models.push(model);
        }
        self
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Worker {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Worker
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an env var of this worker (it wins over the stack's).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Worker {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The default name of the `index`-th worker (from 1).
    pub(super) fn default_name(&self, index: usize) -> String {
        match self.kind {
            Kind::Mocker { .. } => format!("mocker-{index}"),
            _ => format!("worker-{index}"),
        }
    }

    /// The program and its arguments, with `python` the stack's interpreter.
    pub(super) fn command(&self, plan: &StackPlan, python: &Path) -> (OsString, Vec<OsString>) {
        let (program, mut args) = match &self.kind {
            Kind::Mocker { model, dir } => (python.into(), plan.mocker_args(model, dir)),
            Kind::PythonModule(module) => (python.into(), vec!["-m".into(), module.clone().into()]),
            Kind::Program(program) => (program.clone(), Vec::new()),
        };
        args.extend(self.args.iter().cloned());
        (program, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::plan::EventPlane;
    use crate::dynamo::{Discovery, RequestPlane};

    #[test]
    fn each_kind_runs_what_it_says() {
        let plan = StackPlan {
            namespace: "ns".into(),
            discovery: Discovery::Etcd,
            request_plane: RequestPlane::Tcp,
            event_plane: EventPlane::Zmq,
            file_kv: "/kv".into(),
        };
        let py = Path::new("/venv/bin/python");
        let mocker = Worker::mocker("tiny", "/m")
            .arg("--num-gpu-blocks-override")
            .arg("64");
        let (program, args) = mocker.command(&plan, py);
        assert_eq!(program, "/venv/bin/python");
        assert_eq!(args[..2], ["-m", "dynamo.mocker"].map(OsString::from));
        assert_eq!(
            args[args.len() - 2..],
            ["--num-gpu-blocks-override", "64"].map(OsString::from)
        );
        assert_eq!(mocker.models, ["tiny"]);
        assert_eq!(mocker.default_name(2), "mocker-2");

        let module = Worker::python_module("dynamo.vllm").serves("m").serves("m");
        assert_eq!(
            module.command(&plan, py).1,
            ["-m", "dynamo.vllm"].map(OsString::from)
        );
        assert_eq!(module.models, ["m"]);
        assert_eq!(module.default_name(1), "worker-1");

        let program = Worker::program("/bin/engine").args(["-x"]);
        assert_eq!(
            program.command(&plan, py),
            ("/bin/engine".into(), vec!["-x".into()])
        );
    }
}
