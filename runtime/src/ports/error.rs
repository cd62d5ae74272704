//! What can go wrong with a reservation, and what an exhausted range says.

use std::fmt;

use super::range::PortRange;
use super::reservation::Reservation;
use crate::env::EnvError;

/// A port could not be reserved.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// A bad env override (range or port plan).
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The abstract Unix socket name that reserves a port could not be
    /// bound (for another reason than being held: that only skips the port).
    #[error(
        "cannot reserve port {port}: binding the abstract Unix socket @{name} failed: {source}{}",
        reserve_hint(source)
    )]
    Reserve {
        /// The port.
        port: u16,
        /// The abstract name (without its leading NUL).
        name: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The live reservations could not be listed.
    #[error("cannot list the live reservations from /proc/net/unix: {source}; is /proc mounted?")]
    List {
        /// What failed.
        source: std::io::Error,
    },
    /// A reserved port could not be bound (by `into_std_listener` and
    /// `into_tokio_listener`).
    #[error("cannot bind reserved port {port} ({label}) on 127.0.0.1: {source}")]
    Bind {
        /// The port.
        port: u16,
        /// What it was reserved as.
        label: String,
        /// What failed.
        source: std::io::Error,
    },
    /// No free port is left.
    #[error("{0}")]
    Exhausted(Box<Exhausted>),
}

/// Details of an exhausted search: the range, and who holds what.
#[derive(Debug)]
#[non_exhaustive]
pub struct Exhausted {
    /// The ports searched.
    pub range: PortRange,
    /// Live reservations in the range.
    pub reserved: Vec<Reservation>,
    /// Why the reservations could not be listed, if they could not
    /// (`reserved` is empty then, which says nothing).
    pub unlisted: Option<String>,
    /// Ports that were not reserved but in use by some socket.
    pub busy: u32,
}

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reserved = match &self.unlisted {
            None => format!("{} reserved by harness users", self.reserved.len()),
            Some(why) => {
                format!("reserved by harness users: unknown (cannot list /proc/net/unix: {why})")
            }
        };
        write!(
            f,
            "no free port in range {} ({} ports): {reserved}, {} in use by other sockets",
            self.range,
            self.range.len(),
            self.busy
        )?;
        let mut by_holder: Vec<(String, usize)> = Vec::new();
        for r in &self.reserved {
            let who = match &r.holder {
                Some(h) => h.to_string(),
                None => "an unknown holder (a name without a holder record)".to_string(),
            };
            match by_holder.iter_mut().find(|(w, _)| *w == who) {
                Some((_, n)) => *n += 1,
                None => by_holder.push((who, 1)),
            }
        }
        by_holder.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        for (who, n) in by_holder.iter().take(10) {
            write!(f, "\n  {n} held by {who}")?;
        }
        if by_holder.len() > 10 {
            write!(f, "\n  ... and {} more holders", by_holder.len() - 10)?;
        }
        write!(
            f,
            "\nwiden the range with {}=LOW-HIGH, or run `dynamo-test ports` to see the holders",
            super::ENV_PORT_RANGE
        )
    }
}

/// For tests and servers that speak `std::io::Result` (a `Port` bound with
/// `into_tokio_listener()?`): the kind of a bind error is kept, and the
/// message names the port.
impl From<PortError> for std::io::Error {
    fn from(e: PortError) -> Self {
        let kind = match &e {
            PortError::Bind { source, .. }
            | PortError::Reserve { source, .. }
            | PortError::List { source } => source.kind(),
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// What to do about a failed bind of a reservation's name.
fn reserve_hint(source: &std::io::Error) -> &'static str {
    match source.raw_os_error() {
        // Each reservation holds two sockets or more (its name, its holder record).
        Some(libc::EMFILE) | Some(libc::ENFILE) => {
            "; each held port takes two file descriptors (more for a long label): raise the limit (ulimit -n) or hold fewer ports"
        }
        _ => "; reservations need Linux abstract Unix sockets (AF_UNIX in this network namespace)",
    }
}
