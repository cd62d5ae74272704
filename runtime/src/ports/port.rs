//! `Port`: one reserved port, and the ways to use it.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Deref;

use super::error::PortError;
use super::reservation::Claim;

/// A reserved TCP port.
///
/// No other holder (a thread or process using the harness in this network
/// namespace, whatever its user, container or `/tmp`) gets this number
/// until the `Port` is dropped; a child process never inherits it. The reservation does not
/// occupy the socket: bind the number yourself, or hand it to a process you
/// start. For an in-process server, [`Port::into_std_listener`] or
/// [`Port::into_tokio_listener`] binds it with no race window at all.
pub struct Port {
    number: u16,
    label: String,
    /// The port's abstract socket names; dropping them releases the reservation.
    _claim: Claim,
}

impl Port {
    /// A reservation of `number`, held by `claim`.
    pub(super) fn new(number: u16, label: String, claim: Claim) -> Port {
        Port {
            number,
            label,
            _claim: claim,
        }
    }

    /// The port number.
    pub fn get(&self) -> u16 {
        self.number
    }

    /// The label the port was reserved under (test name or parameter).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// `127.0.0.1:{port}`.
    pub fn addr(&self) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, self.number).into()
    }

    /// `http://127.0.0.1:{port}{path}`; `path` should start with `/` (or be empty).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.number, path)
    }

    /// Binds `127.0.0.1:{port}` and gives up the reservation: the bound
    /// listener now keeps every other allocator away from the number.
    pub fn into_std_listener(self) -> Result<std::net::TcpListener, PortError> {
        std::net::TcpListener::bind(self.addr()).map_err(|source| self.bind_error(source))
    }

    /// Like [`Port::into_std_listener`], as a tokio listener. Must be called
    /// within a tokio runtime.
    pub fn into_tokio_listener(self) -> Result<tokio::net::TcpListener, PortError> {
        let (number, label) = (self.number, self.label.clone());
        let listener = self.into_std_listener()?;
        listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
            .map_err(|source| PortError::Bind {
                port: number,
                label,
                source,
            })
    }

    fn bind_error(&self, source: std::io::Error) -> PortError {
        PortError::Bind {
            port: self.number,
            label: self.label.clone(),
            source,
        }
    }
}

impl Deref for Port {
    type Target = u16;
    fn deref(&self) -> &u16 {
        &self.number
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.number.fmt(f)
    }
}

impl fmt::Debug for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Port")
            .field("number", &self.number)
            .field("label", &self.label)
            .finish()
    }
}
