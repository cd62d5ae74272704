//! etcd and NATS for one test: obtained once per test (by its
//! `services(..)` list or its first `Etcd` / `Nats` parameter), announced to
//! its children, and cleaned up after it.

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::Inject;
use crate::context::TestContext;
use crate::error::Error;
use crate::ports::PlanPort;
use crate::services::{Etcd, Instance, Nats, ServiceKind, ServiceRequest, Source};

/// The test's service instances, one cell per kind (a context slot).
#[derive(Default)]
struct Services {
    etcd: OnceCell<Arc<Instance>>,
    nats: OnceCell<Arc<Instance>>,
}

/// Obtains every requested service before the test's body (and before its
/// parameters are injected, so `Etcd`/`Nats` parameters get the same).
pub(crate) async fn require(ctx: &TestContext, requests: &[ServiceRequest]) -> Result<(), Error> {
    // Concurrently: cold, etcd and NATS start side by side.
    let obtained = futures_util::future::join_all(requests.iter().map(|r| service(ctx, *r))).await;
    obtained.into_iter().try_for_each(|r| r.map(drop))
}

/// Keys under the test's etcd prefix shown in a failure report, at most.
const KEYS_SHOWN: usize = 50;

/// What a failure report says of one service the test used, observed
/// before teardown (which deletes the test's keys and stops private
/// instances).
#[derive(Debug, Clone)]
pub(crate) struct ServiceFacts {
    pub kind: &'static str,
    pub endpoints: String,
    /// Where it came from and who started it.
    pub origin: String,
    /// Healthy at the end, or why not.
    pub health: Result<(), String>,
    /// etcd only: the keys under the test's prefix, or why they could
    /// not be read.
    pub keys: Option<Result<KeysSeen, String>>,
    /// What became of it, when there is something to say (a shared one
    /// that died under the test, an external one that stopped answering).
    pub note: Option<String>,
}

/// The keys under a test's etcd prefix.
#[derive(Debug, Clone)]
pub(crate) struct KeysSeen {
    pub prefix: String,
    /// The first [`KEYS_SHOWN`].
    pub shown: Vec<String>,
    /// How many there were.
    pub total: u64,
}

/// The facts of every service the test used.
pub(crate) async fn observe(ctx: &TestContext) -> Vec<ServiceFacts> {
    let services = ctx.slot::<Services>();
    let mut facts = Vec::new();
    for cell in [&services.etcd, &services.nats] {
        if let Some(instance) = cell.get() {
            facts.push(facts_of(instance).await);
        }
    }
    facts
}

async fn facts_of(instance: &Arc<Instance>) -> ServiceFacts {
    let origin = match instance.source {
        Source::SharedStarted => "shared, started by the harness (its keeper runs it)",
        Source::SharedExternal => "shared, external: found healthy on the plan's fixed port",
        Source::FromEnv => "external, named by the environment",
        Source::Isolated if !instance.members.is_empty() => "private cluster of this test",
        Source::Isolated => "private to this test",
    };
    let health = instance
        .wait_healthy(std::time::Duration::from_secs(3))
        .await
        .map_err(|e| e.to_string());
    let keys = match instance.kind {
        ServiceKind::Etcd => {
            let etcd = Etcd::new(instance.clone());
            let prefix = etcd.key_prefix();
            Some(match etcd.keys(&prefix, KEYS_SHOWN).await {
                Ok((shown, total)) => Ok(KeysSeen {
                    shown,
                    total,
                    prefix,
                }),
                Err(e) => Err(e.to_string()),
            })
        }
        ServiceKind::Nats => None,
    };
    ServiceFacts {
        kind: instance.kind.name(),
        endpoints: instance.endpoints.join(","),
        origin: origin.to_string(),
        health,
        keys,
        note: instance.failure_note().await,
    }
}

/// The test's etcd (the one it declared, else the shared one).
impl Inject for Etcd {
    async fn inject(ctx: &TestContext, _param: &str) -> Result<Self, Error> {
        Ok(Etcd::new(
            service(ctx, ServiceRequest::shared(ServiceKind::Etcd)).await?,
        ))
    }
}

/// The test's NATS (the one it declared, else the shared one).
impl Inject for Nats {
    async fn inject(ctx: &TestContext, _param: &str) -> Result<Self, Error> {
        Ok(Nats::new(
            service(ctx, ServiceRequest::shared(ServiceKind::Nats)).await?,
        ))
    }
}

/// The test's instance of the request's kind, obtained once per test. The
/// first request's mode applies; later ones get the same instance.
async fn service(ctx: &TestContext, request: ServiceRequest) -> Result<Arc<Instance>, Error> {
    let kind = request.kind;
    let services = ctx.slot::<Services>();
    let cell = match kind {
        ServiceKind::Etcd => &services.etcd,
        ServiceKind::Nats => &services.nats,
    };
    let instance = cell
        .get_or_try_init(|| async {
            let instance = Instance::obtain(ctx, request).await?;
            announce(ctx, &instance);
            if kind == ServiceKind::Etcd && instance.source != Source::Isolated {
                clean_keys_at_teardown(ctx, &instance);
            }
            Ok::<_, Error>(instance)
        })
        .await?;
    Ok(instance.clone())
}

/// Children learn the endpoints (`ETCD_ENDPOINTS` / `NATS_SERVER`: every
/// member of a cluster); an isolated instance's ports (a cluster's first
/// member's) become the test's port plan.
fn announce(ctx: &TestContext, instance: &Instance) {
    let kind = instance.kind;
    ctx.set_child_env(kind.endpoints_env(), &instance.endpoints.join(","));
    if let (Source::Isolated, Some(ports)) = (instance.source, instance.ports) {
        let (client, second) = match kind {
            ServiceKind::Etcd => (PlanPort::EtcdClient, PlanPort::EtcdPeer),
            ServiceKind::Nats => (PlanPort::NatsClient, PlanPort::NatsHttp),
        };
        ctx.override_plan_port(client, ports.client);
        ctx.override_plan_port(second, ports.second);
    }
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
