//! Is a port free for TCP? Asked by binding, the only test the kernel answers truthfully.
//!
//! The check binds `[::]` with `IPV6_V6ONLY=0` and without `SO_REUSEADDR`,
//! which conflicts with every TCP socket on that port: IPv4 or IPv6, any
//! address, listening, connected or in TIME_WAIT. The socket is closed at
//! once (a socket that never listened leaves no TIME_WAIT), so the port is
//! free for the test to bind.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

/// How strict a bind check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// No socket at all may use the port (TIME_WAIT included).
    Strict,
    /// Sockets in TIME_WAIT are tolerated (`SO_REUSEADDR`): a server that
    /// binds with `SO_REUSEADDR`, as Rust's std and tokio do, gets the port.
    AllowTimeWait,
}

/// Whether a TCP bind of `port` on every address, IPv4 and IPv6, would succeed now.
pub fn is_free(port: u16, strictness: Strictness) -> bool {
    match try_bind(Domain::IPV6, port, strictness) {
        Some(free) => free,
        // No IPv6 on this host: the IPv4 wildcard sees every IPv4 socket.
        None => try_bind(Domain::IPV4, port, strictness).unwrap_or(false),
    }
}

/// `Some(free)`, or `None` when sockets of `domain` cannot be created.
fn try_bind(domain: Domain, port: u16, strictness: Strictness) -> Option<bool> {
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP)).ok()?;
    let addr: SocketAddr = if domain == Domain::IPV6 {
        socket.set_only_v6(false).ok()?;
        (Ipv6Addr::UNSPECIFIED, port).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, port).into()
    };
    if strictness == Strictness::AllowTimeWait {
        socket.set_reuse_address(true).ok()?;
    }
    Some(socket.bind(&addr.into()).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn sees_listeners_on_ipv4_loopback_and_ipv6_loopback() {
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        assert!(!is_free(port, Strictness::Strict));
        assert!(!is_free(port, Strictness::AllowTimeWait));
        drop(v4);
        assert!(is_free(port, Strictness::Strict));

        if let Ok(v6) = TcpListener::bind("[::1]:0") {
            let port = v6.local_addr().unwrap().port();
            assert!(!is_free(port, Strictness::Strict));
        }
    }

    #[test]
    fn the_check_leaves_the_port_bindable() {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        assert!(is_free(port, Strictness::Strict));
        TcpListener::bind(("127.0.0.1", port)).expect("check must not hold the port");
    }
}
