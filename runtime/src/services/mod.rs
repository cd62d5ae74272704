//! Core infrastructure: etcd and NATS.
//!
//! A test asks with `#[dynamo_test(services(etcd, nats))]` or by taking an
//! [`Etcd`] / [`Nats`] parameter. By default it gets the *shared* instance
//! on the port plan's fixed ports: started by the first test that needs it
//! (in any process of the run), reused by every other, stopped by its
//! keeper a short grace after the last user is gone (see [`keeper`]). A
//! healthy instance the harness did not start is reused and never stopped;
//! `ETCD_ENDPOINTS` / `NATS_SERVER` in the environment mean "use these,
//! start nothing". `services(etcd(isolated))` gives the test a private
//! instance on reserved dynamic ports, which it may stop, restart or kill.

mod binaries;
mod etcd;
mod instance;
pub mod keeper;
mod kind;
mod nats;
mod shared;

use std::sync::Arc;

pub use binaries::{find as find_binary, BinaryNotFound};
pub use etcd::Etcd;
pub use instance::{Mode, ServiceRequest, Source};
pub use kind::{ServiceKind, ServicePortPair};
pub use nats::Nats;
pub use shared::{records, users_file, Origin, ServiceRecord, DEFAULT_IDLE_GRACE, ENV_IDLE_GRACE};

use crate::context::TestContext;
use crate::error::Error;
pub(crate) use instance::Instance;

/// Obtains the shared instance of `kind` for this process (as a test
/// would), starting it if needed. Used by `dynamo-test up`.
pub async fn acquire_shared(kind: ServiceKind) -> Result<(ServicePortPair, Origin), Error> {
    let plan = crate::ports::PortPlan::from_env()?;
    let ports = kind.fixed_ports(&plan);
    Ok((ports, shared::acquire(kind, ports).await?))
}

/// Obtains every requested service before the test's body (and before its
/// parameters are injected, so `Etcd`/`Nats` parameters get the same).
pub async fn require(ctx: &TestContext, requests: &[ServiceRequest]) -> Result<(), Error> {
    // Concurrently: cold, etcd and NATS start side by side.
    let obtained =
        crate::join::join_all(requests.iter().map(|r| service(ctx, r.kind, r.mode))).await;
    obtained.into_iter().try_for_each(|r| r.map(drop))
}

/// The test's etcd (the one it declared, else the shared one).
pub async fn etcd(ctx: &TestContext) -> Result<Etcd, Error> {
    let instance = service(ctx, ServiceKind::Etcd, Mode::Shared).await?;
    let handle = Etcd::new(instance);
    Ok(handle)
}

/// The test's NATS (the one it declared, else the shared one).
pub async fn nats(ctx: &TestContext) -> Result<Nats, Error> {
    Ok(Nats::new(
        service(ctx, ServiceKind::Nats, Mode::Shared).await?,
    ))
}

/// The test's instance of `kind`, obtained once per test. `mode` applies
/// to the first request; later ones get the same instance.
async fn service(ctx: &TestContext, kind: ServiceKind, mode: Mode) -> Result<Arc<Instance>, Error> {
    let slot = ctx.service_slot(kind);
    let instance = slot
        .get_or_try_init(|| async {
            let instance = Instance::obtain(ctx, kind, mode).await?;
            if kind == ServiceKind::Etcd && instance.source != Source::Isolated {
                clean_keys_at_teardown(ctx, &instance);
            }
            Ok::<_, Error>(instance)
        })
        .await?;
    Ok(instance.clone())
}

/// On shared etcd, the test's keys go at teardown.
fn clean_keys_at_teardown(ctx: &TestContext, instance: &Arc<Instance>) {
    let etcd = Etcd::new(instance.clone());
    ctx.defer("delete the test's etcd keys", async move {
        let prefix = etcd.key_prefix();
        if let Err(e) = etcd.delete_prefix(&prefix).await {
            eprintln!("[dynamo-test] could not delete etcd keys under {prefix}: {e}");
        }
    });
}
