//! A real Dynamo stack as a fixture: a frontend and its workers, started
//! with everything a test must otherwise know, and ready once routable.
//!
//! ```no_run
//! use dynamo_test::{dynamo, dynamo_test, Error, ServicePorts, TestContext};
//!
//! #[dynamo_test(services(etcd, nats), timeout = "120s")]
//! async fn chat(ctx: &TestContext, ports: ServicePorts) -> Result<(), Error> {
//!     let model = dynamo::tiny_model(ctx.output_dir().join("tiny"))?;
//!     let stack = ctx.dynamo().frontend(ports.dynamo_serve).mocker("tiny", &model).start().await?;
//!     let reply = stack.chat("tiny", "hello", 4).await?;
//!     assert_eq!(reply.completion_tokens(), Some(4));
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! What the stack applies (`plan.rs`): the test's namespace
//! (`DYN_NAMESPACE`: two stacks on one etcd/NATS never see each other),
//! the test's `ETCD_ENDPOINTS` / `NATS_SERVER`, the frontend's HTTP port
//! from the port plan (`dynamo_serve`, 8000+) on 127.0.0.1, a reserved
//! `DYN_SYSTEM_PORT` per worker (at most 32767: Dynamo parses it as an
//! `i16`), 127.0.0.1 for Dynamo's TCP request, response and event planes,
//! and one log per process in the test's output dir.
//!
//! *Routable* (`stack.rs`): the frontend's `/health` is healthy with every
//! worker registered, `/v1/models` lists every model, and a one-token
//! completion of each answers 200. Listing a model is not enough: Dynamo's
//! frontend answers 404 "model not found" for a while after it lists one.
//!
//! Dynamo itself comes from `DYNAMO_PYTHON` or `python3` on `PATH`
//! ([`Dynamo::find`]); `scripts/install-dynamo.sh` installs the tested
//! release into a virtualenv.

mod builder;
mod host;
mod model;
mod openai;
mod plan;
mod python;
mod readiness;
mod stack;
mod worker;

pub use model::tiny_model;
pub use openai::Reply;
pub use plan::{Discovery, RequestPlane};
pub use python::{
    Dynamo, DynamoMissing, ENV_DYNAMO_PYTHON, ENV_REQUIRE_DYNAMO, INSTALL_HINT,
    TESTED_DYNAMO_VERSION,
};

use crate::error::Error;

impl From<DynamoMissing> for Error {
    fn from(missing: DynamoMissing) -> Error {
        Error::Dynamo(missing.to_string())
    }
}
pub use builder::{StackBuilder, DEFAULT_REQUEST_TIMEOUT, DEFAULT_STACK_TIMEOUT};
pub(crate) use host::StackHost;
pub use stack::{Stack, StackWorker};
pub use worker::Worker;
