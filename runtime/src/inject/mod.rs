//! Test parameters: how `#[dynamo_test]` gets a value for each one.
//!
//! The macro asks the compiler, not a list of names: every parameter type
//! must implement [`Inject`]. A `&T` or `&mut T` parameter is injected as a
//! `T` that lives for the whole test.

mod clients;
mod services;

use std::future::Future;

use crate::context::TestContext;
use crate::error::Error;
use crate::ports::{Port, ServicePorts};
pub(crate) use services::{
    observe as observe_services, require as require_services, KeysSeen, ServiceFacts,
};

/// A type that `#[dynamo_test]` can pass to a test as a parameter.
///
/// Implement it to make your own fixtures injectable. Setup may be async and
/// may use the context (reserve ports, start processes); register cleanup
/// with [`TestContext::defer`], which runs at teardown in reverse order of
/// setup, also when the test fails, panics or times out.
///
/// ```
/// use dynamo_test::{dynamo_test, Error, Inject, TestContext};
///
/// /// A scratch directory that is removed at teardown.
/// struct Scratch(std::path::PathBuf);
///
/// impl Inject for Scratch {
///     async fn inject(ctx: &TestContext, param: &str) -> Result<Self, Error> {
///         let dir = ctx.output_dir().join(param);
///         std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating scratch dir", e))?;
///         let to_remove = dir.clone();
///         ctx.defer("remove scratch dir", async move {
///             let _ = std::fs::remove_dir_all(to_remove);
///         });
///         Ok(Scratch(dir))
///     }
/// }
///
/// #[dynamo_test]
/// async fn writes_into_scratch(scratch: Scratch) {
///     std::fs::write(scratch.0.join("x"), b"1").unwrap();
/// }
/// # fn main() {}
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected into a `#[dynamo_test]` function",
    label = "this parameter type does not implement `dynamo_test::Inject`",
    note = "injectable types: `u16` or `dynamo_test::Port` (a reserved port), `dynamo_test::ServicePorts`, `dynamo_test::TestContext` (also as `&TestContext`), `dynamo_test::Etcd`, `dynamo_test::Nats`, `etcd_client::Client` (feature `etcd-client`), `async_nats::Client` (feature `async-nats`)",
    note = "to inject a type of your own, implement `dynamo_test::Inject` for it"
)]
pub trait Inject: Sized {
    /// Builds the value for parameter `param` of the test running in `ctx`.
    fn inject(ctx: &TestContext, param: &str) -> impl Future<Output = Result<Self, Error>>;
}

/// A port reserved for the test; the context holds the reservation until teardown.
impl Inject for u16 {
    async fn inject(ctx: &TestContext, param: &str) -> Result<Self, Error> {
        ctx.reserve_port(param)
    }
}

/// A port reservation owned by the test (logged in the port table).
impl Inject for Port {
    async fn inject(ctx: &TestContext, param: &str) -> Result<Self, Error> {
        ctx.take_port(param)
    }
}

/// The port plan in force, with a `dynamo_serve` port reserved from its base.
impl Inject for ServicePorts {
    async fn inject(ctx: &TestContext, param: &str) -> Result<Self, Error> {
        let mut plan = ctx.service_ports()?;
        for (name, port) in plan.named_fixed_ports() {
            ctx.record_port(&format!("{param}.{name}"), port);
        }
        plan.dynamo_serve =
            ctx.reserve_port_from(&format!("{param}.dynamo_serve"), plan.dynamo_serve_base)?;
        Ok(plan)
    }
}

/// The test's own context (a cheap handle to it).
impl Inject for TestContext {
    async fn inject(ctx: &TestContext, _param: &str) -> Result<Self, Error> {
        Ok(ctx.clone())
    }
}
