//! Step 2's result: what the test asked for, as plain values. `validate`
//! builds it (and is the only place that does); `render` reads it and
//! nothing else of the attribute. The defaults live here, once.

use std::time::Duration;

use syn::Path;

/// A validated `#[dynamo_test(...)]`.
pub struct Config {
    pub runtime: Runtime,
    /// The limit for setup and body: a positive whole number of
    /// milliseconds that fits a `u64` (the runtime takes milliseconds).
    /// `None`: no limit.
    pub timeout: Option<Duration>,
    /// `services(...)`, in the order written; empty when not written.
    pub services: Vec<Service>,
    /// The path that generated code names the runtime crate by.
    pub krate: Path,
}

/// The tokio runtime of an async test. A plain `fn` gets the default: its
/// setup runs on a current-thread runtime, its body on no runtime at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Runtime {
    pub flavor: Flavor,
    pub start_paused: bool,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            flavor: Flavor::CurrentThread,
            start_paused: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    CurrentThread,
    /// `worker_threads: None`: tokio's default (the number of CPUs).
    MultiThread {
        worker_threads: Option<usize>,
    },
}

/// Infrastructure a test needs before its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    pub kind: ServiceKind,
    pub mode: Mode,
    /// NATS with JetStream (the default; `nats(no_jetstream)` turns it
    /// off). Always true for etcd.
    pub jetstream: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    Etcd,
    Nats,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// One instance on the port plan's fixed ports, shared by the whole run.
    #[default]
    Shared,
    /// A private instance on dynamic ports, for this test alone.
    Isolated,
    /// A private etcd cluster of this many members (3 or 5).
    Cluster(u8),
}

/// The runtime crate under its usual name.
pub fn default_crate() -> Path {
    syn::parse_quote!(::dynamo_test)
}
