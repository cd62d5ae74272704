//! What every Dynamo process of a stack is started with: the flags and env
//! vars that keep two stacks on one etcd/NATS apart and Dynamo's planes on
//! loopback. Pure functions, so that unit tests read them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where Dynamo's processes find each other (`DYN_DISCOVERY_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discovery {
    /// etcd: the test's `ETCD_ENDPOINTS` (needs `services(etcd)`).
    #[default]
    Etcd,
    /// A directory of the test's own (`DYN_FILE_KV`): no etcd needed.
    File,
}

/// How the frontend sends requests to workers (`DYN_REQUEST_PLANE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestPlane {
    /// Direct TCP, on loopback (Dynamo's default).
    #[default]
    Tcp,
    /// Through NATS: the test's `NATS_SERVER` (needs `services(nats)`).
    Nats,
}

impl Discovery {
    fn env_value(self) -> &'static str {
        match self {
            Discovery::Etcd => "etcd",
            Discovery::File => "file",
        }
    }
}

impl RequestPlane {
    fn env_value(self) -> &'static str {
        match self {
            RequestPlane::Tcp => "tcp",
            RequestPlane::Nats => "nats",
        }
    }
}

/// How Dynamo's events (KV events, metrics) travel (`DYN_EVENT_PLANE`):
/// through NATS when the test has one (Dynamo's default with etcd), else
/// ZMQ, so that a test without NATS never reaches for `localhost:4222`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EventPlane {
    Nats,
    Zmq,
}

/// Inherited variables that would undo a stack's isolation or ports (a
/// developer's exported `DYN_NAMESPACE_PREFIX` wins over the namespace):
/// its processes do not get them.
pub(super) const INHERITED_UNSET: [&str; 4] = [
    "DYN_NAMESPACE_PREFIX",
    "DYN_NAMESPACE_WORKER_SUFFIX",
    "DYN_HTTP_PORT",
    "DYN_HTTP_HOST",
];

/// What is the same for every process of one stack.
#[derive(Debug, Clone)]
pub(super) struct StackPlan {
    pub namespace: String,
    pub discovery: Discovery,
    pub request_plane: RequestPlane,
    pub event_plane: EventPlane,
    /// `DYN_FILE_KV` for [`Discovery::File`]: inside the test's output dir.
    pub file_kv: PathBuf,
}

/// Loopback for the addresses Dynamo would otherwise pick on its own: its
/// TCP request and response planes and its event plane.
const LOOPBACK_ENV: [&str; 3] = [
    "DYN_TCP_RPC_HOST",
    "DYN_TCP_RESPONSE_STREAM_HOST",
    "DYN_EVENT_PLANE_HOST",
];

impl StackPlan {
    /// The env vars of every process of the stack (on top of the test's
    /// own: `ETCD_ENDPOINTS`, `NATS_SERVER`, `DYN_NAMESPACE`).
    pub fn common_env(&self) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = vec![
            ("DYN_NAMESPACE".into(), self.namespace.clone().into()),
            (
                "DYN_DISCOVERY_BACKEND".into(),
                self.discovery.env_value().into(),
            ),
            (
                "DYN_REQUEST_PLANE".into(),
                self.request_plane.env_value().into(),
            ),
            (
                "DYN_EVENT_PLANE".into(),
                match self.event_plane {
                    EventPlane::Nats => "nats",
                    EventPlane::Zmq => "zmq",
                }
                .into(),
            ),
        ];
        if self.discovery == Discovery::File {
            env.push(("DYN_FILE_KV".into(), self.file_kv.clone().into()));
        }
        env.extend(LOOPBACK_ENV.map(|k| (k.into(), "127.0.0.1".into())));
        // Plain logs: a log tail in a failure report must be readable.
        env.push(("DYN_SDK_DISABLE_ANSI_LOGGING".into(), "1".into()));
        env
    }

    /// The frontend's arguments after the interpreter: HTTP on loopback only.
    pub fn frontend_args(&self, http_port: u16) -> Vec<OsString> {
        [
            "-m",
            "dynamo.frontend",
            "--http-host",
            "127.0.0.1",
            "--http-port",
        ]
        .map(OsString::from)
        .into_iter()
        .chain([http_port.to_string().into()])
        .collect()
    }

    /// The endpoint workers of this stack serve: `dyn://<namespace>.backend.generate`.
    pub fn endpoint(&self) -> String {
        format!("dyn://{}.backend.generate", self.namespace)
    }

    /// The mocker's arguments after the interpreter: `model` from
    /// `model_dir`, as fast as it goes, on this stack's endpoint.
    pub fn mocker_args(&self, model: &str, model_dir: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = ["-m", "dynamo.mocker", "--model-path"]
            .map(OsString::from)
            .into();
        args.push(model_dir.into());
        args.extend(
            ["--model-name", model, "--speedup-ratio", "0", "--endpoint"].map(OsString::from),
        );
        args.push(self.endpoint().into());
        args
    }
}

/// The env of a worker with system port `system_port`, served on
/// loopback. Its `/health` there says `ready` only with
/// `DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS` naming `generate` (as Dynamo's
/// own tests set it): Dynamo 1.6.1 logs that the variable is deprecated,
/// yet without it the mocker's status stays `notready`.
pub(super) fn worker_env(system_port: u16) -> Vec<(OsString, OsString)> {
    vec![
        ("DYN_SYSTEM_PORT".into(), system_port.to_string().into()),
        ("DYN_SYSTEM_HOST".into(), "127.0.0.1".into()),
        (
            "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS".into(),
            "[\"generate\"]".into(),
        ),
    ]
}

/// Dynamo parses `DYN_SYSTEM_PORT` as an `i16`.
pub(super) const MAX_SYSTEM_PORT: u16 = i16::MAX as u16;

/// The frontend's base URL on loopback, where its HTTP port serves.
pub(super) fn frontend_url(http_port: u16) -> String {
    format!("http://127.0.0.1:{http_port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(discovery: Discovery, request_plane: RequestPlane) -> StackPlan {
        StackPlan {
            namespace: "ns-1".into(),
            discovery,
            request_plane,
            event_plane: EventPlane::Nats,
            file_kv: "/out/kv".into(),
        }
    }

    fn get(env: &[(OsString, OsString)], key: &str) -> Option<String> {
        env.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    }

    #[test]
    fn every_process_gets_the_namespace_the_backends_and_loopback_planes() {
        let env = plan(Discovery::Etcd, RequestPlane::Tcp).common_env();
        assert_eq!(get(&env, "DYN_NAMESPACE").as_deref(), Some("ns-1"));
        assert_eq!(get(&env, "DYN_DISCOVERY_BACKEND").as_deref(), Some("etcd"));
        assert_eq!(get(&env, "DYN_REQUEST_PLANE").as_deref(), Some("tcp"));
        assert_eq!(get(&env, "DYN_FILE_KV"), None);
        for key in LOOPBACK_ENV {
            assert_eq!(get(&env, key).as_deref(), Some("127.0.0.1"), "{key}");
        }
        let env = plan(Discovery::File, RequestPlane::Nats).common_env();
        assert_eq!(get(&env, "DYN_DISCOVERY_BACKEND").as_deref(), Some("file"));
        assert_eq!(get(&env, "DYN_FILE_KV").as_deref(), Some("/out/kv"));
        assert_eq!(get(&env, "DYN_REQUEST_PLANE").as_deref(), Some("nats"));
        assert_eq!(get(&env, "DYN_EVENT_PLANE").as_deref(), Some("nats"));
        let without_nats = StackPlan {
            event_plane: EventPlane::Zmq,
            ..plan(Discovery::Etcd, RequestPlane::Tcp)
        };
        let env = without_nats.common_env();
        assert_eq!(get(&env, "DYN_EVENT_PLANE").as_deref(), Some("zmq"));
    }

    #[test]
    fn the_mocker_serves_the_stack_endpoint_and_the_frontend_stays_on_loopback() {
        let plan = plan(Discovery::Etcd, RequestPlane::Tcp);
        let args = plan.mocker_args("tiny", Path::new("/m"));
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "-m",
                "dynamo.mocker",
                "--model-path",
                "/m",
                "--model-name",
                "tiny",
                "--speedup-ratio",
                "0",
                "--endpoint",
                "dyn://ns-1.backend.generate"
            ]
        );
        let args = plan.frontend_args(8001);
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "-m",
                "dynamo.frontend",
                "--http-host",
                "127.0.0.1",
                "--http-port",
                "8001"
            ]
        );
        let worker = worker_env(9100);
        assert_eq!(get(&worker, "DYN_SYSTEM_PORT").as_deref(), Some("9100"));
        assert_eq!(
            get(&worker, "DYN_SYSTEM_HOST").as_deref(),
            Some("127.0.0.1")
        );
    }
}
