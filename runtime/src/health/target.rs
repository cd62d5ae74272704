//! Turning a host name into the addresses to probe.
//!
//! `localhost` may resolve to 127.0.0.1, ::1, or both in either order,
//! depending on the machine; a server usually listens on only one. So
//! loopback names are probed on 127.0.0.1 and ::1 explicitly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The addresses for `host:port`, loopback first, or an error text.
pub(crate) async fn addresses(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if is_loopback_name(bare) {
        return Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]);
    }
    match tokio::net::lookup_host((bare, port)).await {
        Ok(found) => {
            let found: Vec<SocketAddr> = found.collect();
            if found.is_empty() {
                Err(format!("{bare} resolves to no address"))
            } else {
                Ok(found)
            }
        }
        Err(e) => Err(format!("cannot resolve {bare}: {e}")),
    }
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost")
}

/// Splits `host:port` (`[v6]:port` for IPv6).
pub(crate) fn split_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_means_both_loopbacks() {
        let a = addresses("localhost", 80).await.unwrap();
        assert_eq!(
            a,
            vec!["127.0.0.1:80".parse().unwrap(), "[::1]:80".parse().unwrap()]
        );
        let a = addresses("[::1]", 81).await.unwrap();
        assert_eq!(a, vec!["[::1]:81".parse().unwrap()]);
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("127.0.0.1:80"), Some(("127.0.0.1", 80)));
        assert_eq!(split_host_port("[::1]:80"), Some(("[::1]", 80)));
        assert_eq!(split_host_port("nohost"), None);
        assert_eq!(split_host_port(":80"), None);
    }
}
