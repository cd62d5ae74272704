//! What differs between etcd and NATS: binary, ports, arguments, health.

use std::path::Path;

use crate::health::{self, Probe};
use crate::ports::ServicePorts;

/// A kind of core infrastructure service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// etcd (discovery).
    Etcd,
    /// NATS (messaging).
    Nats,
}

/// The two ports a service instance listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServicePortPair {
    /// etcd client port / NATS client port.
    pub client: u16,
    /// etcd peer port / NATS HTTP monitor port.
    pub second: u16,
}

impl ServiceKind {
    /// `etcd` or `nats`.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Etcd => "etcd",
            ServiceKind::Nats => "nats",
        }
    }

    /// The binary's name.
    pub fn program(self) -> &'static str {
        match self {
            ServiceKind::Etcd => "etcd",
            ServiceKind::Nats => "nats-server",
        }
    }

    /// Env var naming the binary.
    pub fn bin_env(self) -> &'static str {
        match self {
            ServiceKind::Etcd => "ETCD_BIN",
            ServiceKind::Nats => "NATS_SERVER_BIN",
        }
    }

    /// Dynamo's env var for the endpoints; set, it means "use these, start nothing".
    pub fn endpoints_env(self) -> &'static str {
        match self {
            ServiceKind::Etcd => "ETCD_ENDPOINTS",
            ServiceKind::Nats => "NATS_SERVER",
        }
    }

    /// The port plan's variables for the client and second port.
    pub fn port_vars(self) -> (&'static str, &'static str) {
        use crate::ports::{
            ENV_ETCD_CLIENT_PORT, ENV_ETCD_PEER_PORT, ENV_NATS_CLIENT_PORT, ENV_NATS_HTTP_PORT,
        };
        match self {
            ServiceKind::Etcd => (ENV_ETCD_CLIENT_PORT, ENV_ETCD_PEER_PORT),
            ServiceKind::Nats => (ENV_NATS_CLIENT_PORT, ENV_NATS_HTTP_PORT),
        }
    }

    /// What the second port is: `peer` (etcd) or `monitor` (NATS).
    pub fn second_port_name(self) -> &'static str {
        match self {
            ServiceKind::Etcd => "peer",
            ServiceKind::Nats => "monitor",
        }
    }

    /// The fixed ports of the plan.
    pub fn fixed_ports(self, plan: &ServicePorts) -> ServicePortPair {
        match self {
            ServiceKind::Etcd => ServicePortPair {
                client: plan.etcd_client,
                second: plan.etcd_peer,
            },
            ServiceKind::Nats => ServicePortPair {
                client: plan.nats_client,
                second: plan.nats_http,
            },
        }
    }

    /// The client URL for `ports` (`http://...` for etcd, `nats://...` for NATS).
    pub fn client_url(self, ports: ServicePortPair) -> String {
        match self {
            ServiceKind::Etcd => format!("http://127.0.0.1:{}", ports.client),
            ServiceKind::Nats => format!("nats://127.0.0.1:{}", ports.client),
        }
    }

    /// The health probe named by the port plan.
    pub fn probe(self, ports: ServicePortPair) -> Box<dyn Probe> {
        match self {
            ServiceKind::Etcd => {
                health::etcd(&format!("http://127.0.0.1:{}", ports.client)).boxed()
            }
            ServiceKind::Nats => {
                health::nats_monitor(&format!("http://127.0.0.1:{}", ports.second)).boxed()
            }
        }
    }

    /// One health check of the instance on `ports`, at most a second: is
    /// a healthy one there now?
    pub async fn healthy_now(self, ports: ServicePortPair) -> bool {
        self.probe(ports)
            .check(std::time::Duration::from_secs(1))
            .await
            .is_ready()
    }

    /// Command-line arguments for a private single-node instance: loopback
    /// only, private data dir, fast elections (etcd is healthy in tens of
    /// milliseconds instead of hundreds), JetStream for NATS.
    pub fn args(self, ports: ServicePortPair, data_dir: &Path) -> Vec<String> {
        self.args_with(ports, data_dir, true)
    }

    /// [`ServiceKind::args`], NATS without JetStream when `jetstream` is
    /// false (`nats(no_jetstream)`: a faster start, no store dir).
    pub fn args_with(
        self,
        ports: ServicePortPair,
        data_dir: &Path,
        jetstream: bool,
    ) -> Vec<String> {
        let mut args = self.full_args(ports, data_dir);
        if self == ServiceKind::Nats && !jetstream {
            args.truncate(args.len() - JETSTREAM_ARGS);
        }
        args
    }

    fn full_args(self, ports: ServicePortPair, data_dir: &Path) -> Vec<String> {
        let data = data_dir.display().to_string();
        match self {
            ServiceKind::Etcd => {
                let cluster = format!("dynamo-test=http://127.0.0.1:{}", ports.second);
                etcd_member_args("dynamo-test", ports, data_dir, &cluster)
            }
            ServiceKind::Nats => vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                ports.client.to_string(),
                "-m".into(),
                ports.second.to_string(),
                // The last JETSTREAM_ARGS arguments: JetStream and its store.
                "-js".into(),
                "-sd".into(),
                data,
            ],
        }
    }
}

/// One etcd member's arguments: loopback only, its own data dir, the
/// `initial_cluster` it belongs to (`name=peer URL,...`), fast elections
/// (healthy in tens of milliseconds).
pub(crate) fn etcd_member_args(
    name: &str,
    ports: ServicePortPair,
    data_dir: &Path,
    initial_cluster: &str,
) -> Vec<String> {
    let client = format!("http://127.0.0.1:{}", ports.client);
    let peer = format!("http://127.0.0.1:{}", ports.second);
    vec![
        "--name".into(),
        name.into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--listen-client-urls".into(),
        client.clone(),
        "--advertise-client-urls".into(),
        client,
        "--listen-peer-urls".into(),
        peer.clone(),
        "--initial-advertise-peer-urls".into(),
        peer,
        "--initial-cluster".into(),
        initial_cluster.into(),
        "--heartbeat-interval=10".into(),
        "--election-timeout=100".into(),
    ]
}

/// NATS's JetStream arguments, last in its command line: `-js -sd <dir>`.
const JETSTREAM_ARGS: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_args() {
        let ports = ServicePortPair {
            client: 2379,
            second: 2380,
        };
        assert_eq!(ServiceKind::Etcd.client_url(ports), "http://127.0.0.1:2379");
        let args = ServiceKind::Etcd.args(ports, Path::new("/d"));
        assert!(args
            .windows(2)
            .any(|w| w == ["--initial-cluster", "dynamo-test=http://127.0.0.1:2380"]));
        let ports = ServicePortPair {
            client: 4222,
            second: 8222,
        };
        assert_eq!(ServiceKind::Nats.client_url(ports), "nats://127.0.0.1:4222");
        assert_eq!(
            ServiceKind::Nats.args(ports, Path::new("/d"))[..6],
            ["-a", "127.0.0.1", "-p", "4222", "-m", "8222"]
        );
        let with = ServiceKind::Nats.args_with(ports, Path::new("/d"), true);
        assert_eq!(with[6..], ["-js", "-sd", "/d"]);
        let without = ServiceKind::Nats.args_with(ports, Path::new("/d"), false);
        assert_eq!(without, with[..6]);
    }
}
