//! A private etcd cluster for one test: `services(etcd(cluster = 3))`.
//!
//! N managed processes on reserved client and peer ports, each listing
//! every member in `--initial-cluster`, with a token of their own so that
//! no other cluster's member can join; data dirs in the test's output
//! directory. Healthy when every member's `/health` is.
//!
//! The members start one right after another, each as soon as the one
//! before it listens on its peer port, not all at the same instant: a new
//! etcd 3.4 member first asks every other member's peer port whether it
//! already belongs to the cluster (`isMemberBootstrapped`, one second per
//! peer). A peer that has bound its port but not yet serves it holds the
//! question until it serves, and members started together each hold the
//! others' questions while asking their own: each waits out the second
//! per peer (measured: about 2.1 s for three members instead of 0.12 s).
//! Started in order, a member's question meets peers that serve or that
//! refuse the connection at once.

use std::time::Duration;

use super::binaries;
use super::instance::Host;
use super::kind::{etcd_member_args, ServiceKind, ServicePortPair};
use crate::error::Error;
use crate::health::{self, EtcdProbe, Probe};
use crate::process::ManagedProcess;

/// How long a cluster may take to become healthy, and a member to listen.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);
/// The longest pause between health checks while the cluster elects.
const HEALTH_POLL_CAP: Duration = Duration::from_millis(5);

/// One member of a private etcd cluster.
#[derive(Debug, Clone)]
pub struct EtcdMember {
    name: String,
    ports: ServicePortPair,
    process: ManagedProcess,
}

impl EtcdMember {
    /// Its etcd name, `etcd-0`, `etcd-1`, ...
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its client URL, e.g. `http://127.0.0.1:40123`.
    pub fn client_url(&self) -> String {
        ServiceKind::Etcd.client_url(self.ports)
    }

    /// Its peer URL (what the other members talk to).
    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.second)
    }

    /// Its client port.
    pub fn client_port(&self) -> u16 {
        self.ports.client
    }

    /// Its peer port.
    pub fn peer_port(&self) -> u16 {
        self.ports.second
    }

    /// Its process (log, pid, exit status).
    pub fn process(&self) -> &ManagedProcess {
        &self.process
    }

    /// Freezes the member, SIGSTOP: hung, not dead.
    pub fn pause(&self) -> Result<(), Error> {
        Ok(self.process.pause()?)
    }

    /// Lets a paused member run again, SIGCONT.
    pub fn resume(&self) -> Result<(), Error> {
        Ok(self.process.resume()?)
    }

    /// Kills the member at once, SIGKILL.
    pub fn kill(&self) {
        self.process.kill();
    }

    /// Stops the member gracefully.
    pub async fn stop(&self) -> Result<(), Error> {
        self.process.stop().await?;
        Ok(())
    }

    /// Stops and starts the member again on the same ports and data.
    /// Returns once it listens on its peer port: a member alone cannot be
    /// healthy while the cluster has no quorum, so wait for health with
    /// [`Etcd::wait_healthy`](super::Etcd::wait_healthy) (the whole
    /// cluster) or [`EtcdMember::wait_healthy`].
    pub async fn restart(&self) -> Result<(), Error> {
        Ok(self.process.restart().await?)
    }

    /// Waits up to `limit` until the member's `/health` is healthy (it
    /// has a leader).
    pub async fn wait_healthy(&self, limit: Duration) -> Result<(), Error> {
        health::wait(&self.probe(), limit).await?;
        Ok(())
    }

    /// Its health check.
    pub(crate) fn probe(&self) -> EtcdProbe {
        health::etcd(&self.client_url())
    }
}

/// Starts a private cluster of `size` members for the test in `ctx`;
/// every member healthy on return.
pub(crate) async fn start(ctx: &dyn Host, size: u8) -> Result<Vec<EtcdMember>, Error> {
    let kind = ServiceKind::Etcd;
    let program = binaries::find(kind.program(), kind.bin_env(), kind.endpoints_env())
        .map_err(|e| Error::Service(e.to_string()))?;
    let ports = (0..size)
        .map(|i| {
            Ok(ServicePortPair {
                client: ctx.reserve_port(&format!("etcd.cluster.{i}.client"))?,
                second: ctx.reserve_port(&format!("etcd.cluster.{i}.peer"))?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let plan = Plan::new(ctx, &ports);
    let mut members = Vec::with_capacity(ports.len());
    for (i, ports) in ports.iter().enumerate() {
        let name = member_name(i);
        let data_dir = ctx.output_dir().join(format!("{name}-data"));
        let _ = std::fs::remove_dir_all(&data_dir);
        let process = ctx
            .process(&name, program.clone().into())
            .args(plan.args(i, &data_dir))
            .ready(health::tcp(format!("127.0.0.1:{}", ports.second)))
            .startup_timeout(STARTUP_LIMIT)
            .start()
            .await?;
        members.push(EtcdMember {
            name,
            ports: *ports,
            process,
        });
    }
    // Polled closely: the election takes tens of milliseconds, and etcd's
    // `/health` is cheap (the default backoff would add up to 50 ms).
    health::Wait::new(&probe(&members), STARTUP_LIMIT)
        .backoff_cap(HEALTH_POLL_CAP)
        .run()
        .await?;
    Ok(members)
}

/// The health check of the whole cluster: every member healthy.
pub(crate) fn probe(members: &[EtcdMember]) -> health::All {
    health::all(members.iter().map(|m| m.probe().boxed()).collect())
}

fn member_name(i: usize) -> String {
    format!("etcd-{i}")
}

/// What every member's command line shares: the member list and token.
struct Plan {
    ports: Vec<ServicePortPair>,
    initial_cluster: String,
    token: String,
}

impl Plan {
    fn new(ctx: &dyn Host, ports: &[ServicePortPair]) -> Plan {
        // Reserved ports are unique among live tests, the namespace per test.
        let first = ports.first().map_or(0, |p| p.client);
        Plan::with_token(ports, format!("dynamo-test-{}-{first}", ctx.namespace()))
    }

    fn with_token(ports: &[ServicePortPair], token: String) -> Plan {
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}=http://127.0.0.1:{}", member_name(i), p.second))
            .collect::<Vec<_>>()
            .join(",");
        Plan {
            ports: ports.to_vec(),
            initial_cluster,
            token,
        }
    }

    /// Member `i`'s arguments: loopback only, its own data dir, a new
    /// cluster of every member, the single member's fast elections.
    fn args(&self, i: usize, data_dir: &std::path::Path) -> Vec<String> {
        let name = member_name(i);
        let mut args = etcd_member_args(&name, self.ports[i], data_dir, &self.initial_cluster);
        args.extend([
            "--initial-cluster-state".into(),
            "new".into(),
            "--initial-cluster-token".into(),
            self.token.clone(),
        ]);
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_lists_every_member() {
        let ports: Vec<ServicePortPair> = (0..3)
            .map(|i| ServicePortPair {
                client: 41000 + i,
                second: 42000 + i,
            })
            .collect();
        let plan = Plan::with_token(&ports, "t".into());
        let args = plan.args(1, std::path::Path::new("/d"));
        let has = |pair: [&str; 2]| args.windows(2).any(|w| w == pair);
        assert!(has(["--name", "etcd-1"]));
        assert!(has(["--listen-peer-urls", "http://127.0.0.1:42001"]));
        assert!(has(["--advertise-client-urls", "http://127.0.0.1:41001"]));
        assert!(has(["--initial-cluster-state", "new"]));
        assert!(has(["--initial-cluster-token", "t"]));
        let all = "etcd-0=http://127.0.0.1:42000,etcd-1=http://127.0.0.1:42001,etcd-2=http://127.0.0.1:42002";
        assert!(has(["--initial-cluster", all]));
    }
}
