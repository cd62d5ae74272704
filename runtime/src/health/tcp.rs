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
            match connect(&self.addr, budget).await {
                Ok(_) => Check::Ready,
                Err(check) => check,
            }
        })
    }
}

/// Connects to `addr` (`host:port`; loopback names mean both loopbacks),
/// or says why not as the attempt's answer: fatal for an address that is
/// not one, not ready otherwise.
pub(crate) async fn connect(addr: &str, budget: Duration) -> Result<tokio::net::TcpStream, Check> {
    let Some((host, port)) = split_host_port(addr) else {
        return Err(Check::fatal(format!("{addr:?} is not a host:port address")));
    };
    let targets = addresses(host, port).await.map_err(Check::not_ready)?;
    connect_any(&targets, budget)
        .await
        .map_err(Check::not_ready)
}

/// The reason [`connect_any`] gives when every address refused: nothing
/// listens (yet). The wait loop sees it often, so it stays this short.
pub(crate) const REFUSED: &str = "connection refused";

/// Connects to the first address that accepts, trying them in order.
pub(crate) async fn connect_any(
    targets: &[std::net::SocketAddr],
    budget: Duration,
) -> Result<tokio::net::TcpStream, String> {
    let mut last = String::from("no address to connect to");
    for addr in targets {
        let connect = tokio::net::TcpStream::connect(addr);
        match crate::sys::real_time::timeout(budget, connect).await {
            Some(Ok(stream)) => return Ok(stream),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = REFUSED.into()
            }
            Some(Err(e)) => last = format!("connect to {addr}: {e}"),
            None => last = format!("connect to {addr} timed out after {budget:?}"),
        }
    }
    Err(last)
}
