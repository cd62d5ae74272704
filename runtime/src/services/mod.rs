//! Core infrastructure: etcd and NATS.
//!
//! A test asks with `#[dynamo_test(services(etcd, nats))]` or by taking an
//! [`Etcd`] / [`Nats`] parameter. By default it gets the *shared* instance
//! on the port plan's fixed ports: started by the first test that needs it
//! (in any process, of any user or container sharing the network), reused
//! by every other, stopped by its keeper a short grace after the last user
//! anywhere is gone (`keeper/mod.rs`). A healthy instance the harness did
//! not start is reused and never stopped;
//! `ETCD_ENDPOINTS` / `NATS_SERVER` in the environment mean "use these,
//! start nothing". `services(etcd(isolated))` gives the test a private
//! instance on reserved dynamic ports, which it may stop, restart or kill;
//! `services(etcd(cluster = 3))` a private three-member etcd cluster
//! (`cluster.rs`), `services(nats(no_jetstream))` a private NATS without
//! JetStream.

pub(crate) mod binaries;
mod cluster;
mod etcd;
pub(crate) mod instance;
mod joined;
pub(crate) mod keeper;
pub(crate) mod kind;
mod nats;
pub(crate) mod shared;

pub use cluster::EtcdMember;
pub use etcd::Etcd;
pub use instance::Source;
pub use nats::Nats;

use crate::error::Error;
pub(crate) use instance::{Host, Instance, ServiceRequest};
pub(crate) use kind::{ServiceKind, ServicePortPair};
use shared::Origin;

/// Obtains the shared instance of `kind` for this process (as a test
/// would), starting it if needed. Used by `dynamo-test up`.
pub(crate) async fn acquire_shared(kind: ServiceKind) -> Result<(ServicePortPair, Origin), Error> {
    let plan = crate::ports::ServicePorts::from_env()?;
    let ports = kind.fixed_ports(&plan);
    Ok((ports, shared::acquire(kind, ports).await?.0))
}
