//! # dynamo-test
//!
//! An integration-test harness for distributed services (NVIDIA-Dynamo
//! style: HTTP frontend, workers, etcd, NATS). One attribute,
//! [`#[dynamo_test]`](dynamo_test), gives a test its own reserved ports, and
//! everything it acquires is released at its end, whatever the outcome.
//!
//! ```
//! use dynamo_test::{dynamo_test, Port, ServicePorts, TestContext};
//!
//! #[dynamo_test(timeout = "30s")]
//! async fn frontend_answers(api: Port, ports: ServicePorts, ctx: &TestContext) {
//!     // `api` is reserved for this test alone; bind it directly.
//!     let listener = api.into_tokio_listener().unwrap();
//!     assert!(ports.dynamo_serve >= ports.dynamo_serve_base);
//!     assert!(ctx.port_table().contains("api="));
//!     drop(listener);
//! }
//! # fn main() {}
//! ```
//!
//! See the README for the options, the env vars and how the port allocator works.
#![warn(missing_docs)]

pub mod admin;
mod context;
mod duration;
pub mod dynamo;
mod env;
pub mod error;
pub mod health;
mod inject;
mod output_dir;
mod ports;
pub mod process;
mod report;
mod runner;
pub mod services;
mod state_dir;
mod sys;

pub use context::{TestContext, WaitFor, DEFAULT_WAIT_TIMEOUT};
pub use dynamo_test_macros::dynamo_test;
pub use error::Error;
pub use inject::Inject;
pub use ports::{find_free_port, find_free_port_from, Port, ServicePorts, SERVICE_PORTS};
pub use process::{ManagedProcess, ProcessBuilder};
pub use services::{Etcd, EtcdMember, Nats};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// What `#[dynamo_test]` expands into. Not a public API: may change at any time.
#[doc(hidden)]
pub mod __private {
    pub use crate::runner::{
        enter_body, run_async, run_async_with_timeout, run_sync, run_sync_with_timeout, Flavor,
        TestConfig, TestResult,
    };
    pub use crate::services::instance::{Mode, ServiceRequest};
    pub use crate::services::kind::ServiceKind;
    pub use crate::{Error, Inject, TestContext};
    pub use std::time::Duration;
}
