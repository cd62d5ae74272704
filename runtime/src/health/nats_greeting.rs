//! `nats_client(addr)`: ready when the NATS client port greets with
//! `INFO {...}`, the first line of the NATS protocol. A bare TCP connect
//! says "ready" for any listener (an etcd on the port, say).

use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::tcp::connect;
use super::{Check, CheckFuture, Probe};

/// Longest greeting read: NATS sends one INFO line of well under this.
const MAX_GREETING: usize = 8192;

/// Probe: the NATS server at `host:port` greets with `INFO`.
#[derive(Debug, Clone)]
pub struct NatsGreetingProbe {
    addr: String,
}

/// A probe that is ready when `addr` (`host:port`, or a `nats://` or
/// `tls://` URL's `[user@]host:port[/...]`) answers with the NATS `INFO`
/// greeting (a TLS server sends it in the clear before the handshake).
pub fn nats_client(addr: &str) -> NatsGreetingProbe {
    let addr = ["nats://", "tls://"]
        .iter()
        .find_map(|scheme| addr.strip_prefix(scheme))
        .unwrap_or(addr);
    let host_port = addr.split('/').next().unwrap_or_default();
    NatsGreetingProbe {
        addr: host_port.rsplit('@').next().unwrap_or_default().to_string(),
    }
}

impl Probe for NatsGreetingProbe {
    fn describe(&self) -> String {
        format!("NATS INFO greeting from {}", self.addr)
    }

    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        Box::pin(async move {
            match connect(&self.addr, budget).await {
                Ok(stream) => greeting(stream, budget).await,
                Err(check) => check,
            }
        })
    }
}

/// Reads the first line (within most of the budget, so the reason is ours,
/// not the wait loop's "attempt timed out").
async fn greeting(mut stream: tokio::net::TcpStream, budget: Duration) -> Check {
    let mut line = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        while !line.contains(&b'\n') && line.len() < MAX_GREETING {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => line.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    let outcome = crate::sys::real_time::timeout(budget * 9 / 10, read).await;
    match outcome {
        None if line.is_empty() => {
            Check::not_ready("connected, but no greeting (not a NATS server?)")
        }
        Some(Err(e)) => Check::not_ready(format!("reading the greeting: {e}")),
        Some(Ok(())) if line.is_empty() => {
            Check::not_ready("connected, but it closed without a greeting (not a NATS server?)")
        }
        _ if line.starts_with(b"INFO {") => Check::Ready,
        _ => {
            let text = String::from_utf8_lossy(&line);
            let first: String = text.lines().next().unwrap_or("").chars().take(80).collect();
            Check::not_ready(format!(
                "not a NATS server: it sent {first:?}, expected `INFO {{...}}`"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_credentials_come_off() {
        assert_eq!(
            nats_client("nats://u:p@127.0.0.1:4222/").addr,
            "127.0.0.1:4222"
        );
        assert_eq!(nats_client("localhost:4222").addr, "localhost:4222");
        assert_eq!(nats_client("tls://127.0.0.1:4443").addr, "127.0.0.1:4443");
    }

    #[tokio::test]
    async fn a_listener_that_is_not_nats_is_not_ready() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                .await
                .unwrap();
        });
        let check = nats_client(&addr.to_string())
            .check(Duration::from_secs(1))
            .await;
        let Check::NotReady { reason, .. } = check else {
            panic!("{check:?}");
        };
        assert!(reason.starts_with("not a NATS server"), "{reason}");
    }
}
