//! What a test holds for one service: endpoints, ports, origin, and (in
//! isolated mode) the process.

use std::path::Path;
use std::sync::Arc;

use super::cluster::{self, EtcdMember};
use super::kind::{ServiceKind, ServicePortPair};
use super::shared::{self, Origin};
use crate::error::Error;
use crate::health::{self, Probe};
use crate::process::{ManagedProcess, Owner, ProcessBuilder};

/// What obtaining a service needs from the test it is for (its context
/// implements it): the services module never sees the context itself.
pub(crate) trait Host: Owner {
    /// The test's namespace (etcd key and NATS subject prefixes).
    fn namespace(&self) -> &str;
    /// The test's output directory (a private instance's data dir).
    fn output_dir(&self) -> &Path;
    /// Reserves a port named `name`, held until the test's teardown.
    fn reserve_port(&self, name: &str) -> Result<u16, Error>;
    /// Records `name -> port` in the test's port table.
    fn record_port(&self, name: &str, port: u16);
    /// A managed process owned by the test.
    fn process(&self, name: &str, program: std::ffi::OsString) -> ProcessBuilder;
}

/// Where a test's service instance comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The shared instance on the fixed ports, started by the harness.
    SharedStarted,
    /// A healthy instance already on the fixed ports that the harness did
    /// not start: reused, never stopped.
    SharedExternal,
    /// Endpoints from the environment (`ETCD_ENDPOINTS` / `NATS_SERVER`):
    /// nothing is started.
    FromEnv,
    /// A private instance on reserved dynamic ports, owned by the test.
    Isolated,
}

/// One service as a test sees it.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub kind: ServiceKind,
    pub endpoints: Vec<String>,
    /// Local ports, when the harness knows them.
    pub ports: Option<ServicePortPair>,
    pub source: Source,
    pub namespace: String,
    /// The process, in isolated mode.
    pub process: Option<ManagedProcess>,
    /// The members of a private etcd cluster (else empty).
    pub members: Vec<EtcdMember>,
}

/// How a test asked for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The shared instance (or the environment's endpoints).
    Shared,
    /// A private instance on dynamic ports.
    Isolated,
    /// A private etcd cluster of this many members, on dynamic ports.
    Cluster(u8),
}

/// A service request from `#[dynamo_test(services(...))]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceRequest {
    /// Which service.
    pub kind: ServiceKind,
    /// Shared, isolated or a cluster.
    pub mode: Mode,
    /// NATS with JetStream (false: `nats(no_jetstream)`, a private server
    /// only). etcd ignores it.
    pub jetstream: bool,
}

impl ServiceRequest {
    /// The shared instance (or the environment's endpoints) of `kind`.
    pub(crate) fn shared(kind: ServiceKind) -> ServiceRequest {
        ServiceRequest {
            kind,
            mode: Mode::Shared,
            jetstream: true,
        }
    }
}

impl Instance {
    /// Stops the private instance gracefully (isolated mode only).
    pub(crate) async fn stop(&self) -> Result<(), Error> {
        self.isolated("stop")?.stop().await?;
        Ok(())
    }

    /// Starts the private instance again, same ports and data, and waits
    /// until healthy (isolated mode only).
    pub(crate) async fn start(&self) -> Result<(), Error> {
        Ok(self.isolated("start")?.restart().await?)
    }

    /// Kills the private instance at once (isolated mode only).
    pub(crate) fn kill(&self) -> Result<(), Error> {
        self.isolated("kill")?.kill();
        Ok(())
    }

    /// Freezes the private instance, SIGSTOP (isolated mode only).
    pub(crate) fn pause(&self) -> Result<(), Error> {
        Ok(self.isolated("pause")?.pause()?)
    }

    /// Lets a paused private instance run again, SIGCONT (isolated mode only).
    pub(crate) fn resume(&self) -> Result<(), Error> {
        Ok(self.isolated("resume")?.resume()?)
    }

    /// Stops and starts the private instance on the same ports and data,
    /// healthy on return (isolated mode only).
    pub(crate) async fn restart(&self) -> Result<(), Error> {
        Ok(self.isolated("restart")?.restart().await?)
    }

    /// Waits up to `limit` until the instance answers its health check
    /// (any mode: after a fault, or to see a shared one is back).
    pub(crate) async fn wait_healthy(&self, limit: std::time::Duration) -> Result<(), Error> {
        health::wait(self.probe().as_ref(), limit).await?;
        Ok(())
    }

    /// For a failing test that used it: the harness-started shared
    /// instance died (how, its log) or was stopped; an external one (found
    /// on the fixed port, or named by `ETCD_ENDPOINTS` / `NATS_SERVER`) no
    /// longer answers, and the harness never restarts it.
    pub(crate) async fn failure_note(&self) -> Option<String> {
        let found_as = match self.source {
            Source::SharedStarted => return shared::death_note(self.kind, self.ports?).await,
            Source::Isolated => return None,
            Source::SharedExternal => format!(
                "a healthy {} was already on the plan's fixed port",
                self.kind.name()
            ),
            Source::FromEnv => format!("named by {}", self.kind.endpoints_env()),
        };
        let answer = health::wait(self.probe().as_ref(), std::time::Duration::from_secs(1)).await;
        let silent = answer.err()?;
        Some(format!(
            "the {} at {} is external (not started by the harness: {found_as}) and no longer \
             answers: {silent}\nthe harness never restarts it",
            self.kind.name(),
            self.endpoints.join(",")
        ))
    }

    /// The health check of this instance: every member of a cluster, on
    /// its ports, else its first endpoint.
    fn probe(&self) -> Box<dyn Probe> {
        match self.ports {
            _ if !self.members.is_empty() => cluster::probe(&self.members).boxed(),
            Some(ports) => self.kind.probe(ports),
            None => endpoint_probe(self.kind, &self.endpoints[0]),
        }
    }

    /// The private process, or an error saying that `what` needs isolated
    /// mode (or, for a cluster, names a member).
    fn isolated(&self, what: &str) -> Result<&ManagedProcess, Error> {
        if !self.members.is_empty() {
            return Err(Error::Service(format!(
                "`{what}` acts on one process, and this etcd is a cluster of {}: \
                 write etcd.member(i)?.{what}() (etcd.leader() says which is the leader)",
                self.members.len()
            )));
        }
        self.process.as_ref().ok_or_else(|| {
            let service = self.kind.name();
            Error::Service(format!(
                "`{what}` needs a private {service}: the shared one serves other tests too; \
                 write #[dynamo_test(services({service}(isolated)))]"
            ))
        })
    }

    /// Obtains the service for the test in `ctx`: from the environment, the
    /// shared instance, or a private one. Healthy on return.
    pub(crate) async fn obtain(
        ctx: &dyn Host,
        request: ServiceRequest,
    ) -> Result<Arc<Instance>, Error> {
        let kind = request.kind;
        let instance = match (request.mode, endpoints_from_env(kind)?) {
            (Mode::Isolated, _) => isolated(ctx, kind, request.jetstream).await?,
            (Mode::Cluster(size), _) => etcd_cluster(ctx, kind, size).await?,
            (Mode::Shared, Some(endpoints)) => from_env(ctx, kind, endpoints).await?,
            (Mode::Shared, None) => shared(ctx, kind).await?,
        };
        if let (Some(ports), false) = (instance.ports, instance.source == Source::Isolated) {
            ctx.record_port(&format!("{}.client", kind.name()), ports.client);
            ctx.record_port(
                &format!("{}.{}", kind.name(), second_port_name(kind)),
                ports.second,
            );
        }
        let joined = instance.endpoints.join(",");
        ctx.note(&format!(
            "{} at {joined} ({:?})",
            kind.name(),
            instance.source
        ));
        Ok(Arc::new(instance))
    }
}

fn second_port_name(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::Etcd => "peer",
        ServiceKind::Nats => "http",
    }
}

/// `ETCD_ENDPOINTS` / `NATS_SERVER`, comma-separated, if set; a value
/// that is not a list of URLs of the service's scheme is an error naming
/// the variable.
pub(crate) fn endpoints_from_env(kind: ServiceKind) -> Result<Option<Vec<String>>, Error> {
    let name = kind.endpoints_env();
    let Some(value) = crate::env::var(&crate::env::process_env, name)? else {
        return Ok(None);
    };
    let endpoints: Vec<String> = value
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let scheme_ok = |e: &String| match kind {
        ServiceKind::Etcd => e.starts_with("http://") || e.starts_with("https://"),
        ServiceKind::Nats => e.starts_with("nats://") || e.starts_with("tls://"),
    };
    if endpoints.is_empty() || !endpoints.iter().all(scheme_ok) {
        let expected = match kind {
            ServiceKind::Etcd => "comma-separated http:// URLs, e.g. http://127.0.0.1:2379",
            ServiceKind::Nats => "comma-separated nats:// URLs, e.g. nats://127.0.0.1:4222",
        };
        return Err(crate::env::EnvError::new(name, &value, expected).into());
    }
    Ok(Some(endpoints))
}

/// The health check of an instance known by its URL only.
fn endpoint_probe(kind: ServiceKind, url: &str) -> Box<dyn Probe> {
    match kind {
        ServiceKind::Etcd => health::etcd(url).boxed(),
        ServiceKind::Nats => health::tcp(
            url.trim_start_matches("nats://")
                .trim_start_matches("tls://"),
        )
        .boxed(),
    }
}

async fn from_env(
    ctx: &dyn Host,
    kind: ServiceKind,
    endpoints: Vec<String>,
) -> Result<Instance, Error> {
    let probe = endpoint_probe(kind, &endpoints[0]);
    let waited = health::wait(&probe, std::time::Duration::from_secs(10)).await;
    match waited {
        Ok(ready) => ctx.note(&format!("ready: {ready}")),
        Err(e) => {
            return Err(Error::Service(format!(
                "the {} at {} is external (not started by the harness: named by {}) and does \
                 not answer: {e}\nthe harness never starts or restarts it: start it, or unset \
                 {} so that the harness runs its own",
                kind.name(),
                endpoints.join(","),
                kind.endpoints_env(),
                kind.endpoints_env()
            )))
        }
    }
    Ok(Instance {
        kind,
        endpoints,
        ports: None,
        source: Source::FromEnv,
        namespace: ctx.namespace().to_string(),
        process: None,
        members: Vec::new(),
    })
}

async fn shared(ctx: &dyn Host, kind: ServiceKind) -> Result<Instance, Error> {
    let plan = crate::ports::ServicePorts::from_env()?;
    let ports = kind.fixed_ports(&plan);
    let (origin, healed) = shared::acquire(kind, ports).await?;
    if let Some(line) = healed {
        ctx.note(&line);
    }
    Ok(Instance {
        kind,
        endpoints: vec![kind.client_url(ports)],
        ports: Some(ports),
        source: match origin {
            Origin::Harness => Source::SharedStarted,
            Origin::External => Source::SharedExternal,
        },
        namespace: ctx.namespace().to_string(),
        process: None,
        members: Vec::new(),
    })
}

async fn isolated(ctx: &dyn Host, kind: ServiceKind, jetstream: bool) -> Result<Instance, Error> {
    let program = super::binaries::find(kind.program(), kind.bin_env(), kind.endpoints_env())
        .map_err(|e| Error::Service(e.to_string()))?;
    let ports = ServicePortPair {
        client: ctx.reserve_port(&format!("{}.isolated.client", kind.name()))?,
        second: ctx.reserve_port(&format!(
            "{}.isolated.{}",
            kind.name(),
            second_port_name(kind)
        ))?,
    };
    let data_dir = ctx.output_dir().join(format!("{}-data", kind.name()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let process = ctx
        .process(kind.name(), program.into())
        .args(kind.args_with(ports, &data_dir, jetstream))
        .ready(kind.probe(ports))
        .startup_timeout(std::time::Duration::from_secs(30))
        .start()
        .await?;
    Ok(Instance {
        kind,
        endpoints: vec![kind.client_url(ports)],
        ports: Some(ports),
        source: Source::Isolated,
        namespace: ctx.namespace().to_string(),
        process: Some(process),
        members: Vec::new(),
    })
}

async fn etcd_cluster(ctx: &dyn Host, kind: ServiceKind, size: u8) -> Result<Instance, Error> {
    if kind != ServiceKind::Etcd {
        return Err(Error::Service(format!(
            "a cluster is for etcd; write {}(isolated) for a private {}",
            kind.name(),
            kind.name()
        )));
    }
    let members = cluster::start(ctx, size).await?;
    let endpoints = members.iter().map(EtcdMember::client_url).collect();
    Ok(Instance {
        kind,
        endpoints,
        // The first member's: what `Etcd::port()` and the port plan give.
        ports: members.first().map(|m| ServicePortPair {
            client: m.client_port(),
            second: m.peer_port(),
        }),
        source: Source::Isolated,
        namespace: ctx.namespace().to_string(),
        process: None,
        members,
    })
}
