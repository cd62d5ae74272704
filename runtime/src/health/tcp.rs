//! `tcp(addr)`: ready when a TCP connection succeeds.

use std::time::Duration;

use super::target::{addresses, split_host_port};
use super::{Check, CheckFuture, Probe};

/// Probe: a TCP connect to the address succeeds.
#[derive(Debug, Clone)]
pub struct TcpProbe {
    addr: String,
}

/// A probe that is ready when `addr` (`host:port`, e.g. `127.0.0.1:8000`
/// or `localhost:4222`) accepts a TCP connection.
pub fn tcp(addr: impl std::fmt::Display) -> TcpProbe {
    TcpProbe {
        addr: addr.to_string(),
    }
}

impl Probe for TcpProbe {
    fn describe(&self) -> String {
        format!("TCP connect to {}", self.addr)
    }

    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        Box::pin(async move {
            let Some((host, port)) = split_host_port(&self.addr) else {
                return Check::fatal(format!("{:?} is not a host:port address", self.addr));
            };
            let targets = match addresses(host, port).await {
                Ok(t) => t,
                Err(e) => return Check::not_ready(e),
            };
            match connect_any(&targets, budget).await {
                Ok(_) => Check::Ready,
                Err(reason) => Check::not_ready(reason),
            }
        })
    }
}

/// Connects to the first address that accepts, trying them in order.
pub(crate) async fn connect_any(
    targets: &[std::net::SocketAddr],
    budget: Duration,
) -> Result<tokio::net::TcpStream, String> {
    let mut last = String::from("no address to connect to");
    for addr in targets {
        match tokio::time::timeout(budget, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = "connection refused".into()
            }
            Ok(Err(e)) => last = format!("connect to {addr}: {e}"),
            Err(_) => last = format!("connect to {addr} timed out after {budget:?}"),
        }
    }
    Err(last)
}
