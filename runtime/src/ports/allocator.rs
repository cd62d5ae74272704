//! The allocator: reserve a candidate port, then check that the kernel agrees it is free.

use std::sync::OnceLock;
use std::time::Instant;

use super::bind_check::{self, Strictness};
use super::error::{Exhausted, PortError};
use super::port::Port;
use super::range::PortRange;
use super::reservation::{Claim, Holder, Names, Reservation, PREFIX};
use super::service_ports::ServicePorts;
use super::spares::{self, Found, Spare};

/// After this many candidates failed the strict check, ports in TIME_WAIT are
/// accepted: every port a test served sits 60 s in TIME_WAIT, and a strict
/// allocator would run the range dry at ~200 allocations/s. Servers bind
/// with SO_REUSEADDR (std, tokio, Go: etcd and NATS), which TIME_WAIT
/// allows, so strictness is a preference; each candidate costs a few
/// syscalls, and 64 strict ones put p99 at 12-15 ms (BENCHMARKS.md).
const STRICT_CANDIDATES: u32 = 8;

/// How many candidates a spare's search tries before it gives up.
const SPARE_CANDIDATES: u32 = 16;

/// Reserves a random free port from the dynamic range (see
/// [`PortRange::dynamic_from_env`](super::PortRange::dynamic_from_env)).
///
/// The reservation is labelled with the current thread's name, which under
/// libtest is the test's name.
pub fn find_free_port() -> Result<Port, PortError> {
    reserve(&thread_label(), None)
}

/// Reserves the first free port at or above `base` (e.g. 8000 for "Dynamo
/// serve on 8000+"). The fixed infrastructure ports are skipped.
pub fn find_free_port_from(base: u16) -> Result<Port, PortError> {
    reserve(&thread_label(), Some(base))
}

/// Every live reservation in this network namespace: of every process,
/// user and container that shares the network with us.
pub fn live_reservations() -> Result<Vec<Reservation>, PortError> {
    NAMES.live().map_err(|source| PortError::List { source })
}

/// The names of the real reservations.
static NAMES: std::sync::LazyLock<Names> = std::sync::LazyLock::new(|| Names::new(PREFIX));

/// Reserves a port labelled `label`: random from the dynamic range, or the
/// first free one from `base`.
pub(crate) fn reserve(label: &str, base: Option<u16>) -> Result<Port, PortError> {
    let allocator = Allocator::global()?;
    match base {
        None => allocator.random(label),
        Some(base) => {
            let range = PortRange {
                low: base.max(1),
                high: u16::MAX,
            };
            let (port, claim) = allocator.scan(range, range.low..=range.high)?;
            Ok(allocator.grant(label, port, claim))
        }
    }
}

fn thread_label() -> String {
    let thread = std::thread::current();
    match thread.name() {
        Some(name) => name.to_string(),
        None => format!("pid {} thread {:?}", std::process::id(), thread.id()),
    }
}

/// Settings read once per process: the names, the dynamic range, and the
/// fixed ports that are never handed out.
struct Allocator {
    names: &'static Names,
    range: PortRange,
    fixed: [u16; 4],
}

impl Allocator {
    fn global() -> Result<&'static Allocator, PortError> {
        static GLOBAL: OnceLock<Allocator> = OnceLock::new();
        if let Some(a) = GLOBAL.get() {
            return Ok(a);
        }
        // A failed setup is not cached: the error is returned to each caller.
        let built = Allocator {
            names: &NAMES,
            range: PortRange::dynamic_from_env()?,
            fixed: ServicePorts::from_env()?.fixed_ports(),
        };
        Ok(GLOBAL.get_or_init(|| built))
    }

    /// A random port of the dynamic range: a spare of this thread's if
    /// it has one for `label`, else a search (which reserves spares when
    /// the thread's calls come quickly).
    fn random(&self, label: &str) -> Result<Port, PortError> {
        let pid = std::process::id();
        let found = spares::with_thread_spares(|s| s.call(pid, label, self.range, Instant::now()));
        let batch = match found {
            Some(Found::Spare(spare)) => {
                return Ok(Port::new(spare.port, label.to_string(), spare.claim))
            }
            Some(Found::Search { spares }) => spares,
            None => 0,
        };
        let (port, claim) = self.scan_random()?;
        let granted = self.grant(label, port, claim);
        for _ in 0..batch {
            let Some((port, mut claim)) = self.spare() else {
                break;
            };
            self.names.record(&mut claim, port, &Holder::me(label));
            let spare = Spare::new(port, claim);
            if spares::with_thread_spares(|s| s.keep(spare)).is_none() {
                break;
            }
        }
        Ok(granted)
    }

    /// Searches the dynamic range from a random start.
    fn scan_random(&self) -> Result<(u16, Claim), PortError> {
        let range = self.range;
        let start = fastrand::u32(..range.len());
        self.scan(
            range,
            (0..range.len()).map(|i| range.nth_wrapping(start + i)),
        )
    }

    /// Hands `port` out to `label`: its holder record names the caller.
    fn grant(&self, label: &str, port: u16, mut claim: Claim) -> Port {
        self.names.record(&mut claim, port, &Holder::me(label));
        Port::new(port, label.to_string(), claim)
    }

    /// Tries `candidates` in order; the first that we can reserve and that
    /// the kernel says is free is ours (its holder not yet recorded).
    fn scan(
        &self,
        range: PortRange,
        candidates: impl Iterator<Item = u16>,
    ) -> Result<(u16, Claim), PortError> {
        let (found, busy) = self.first_free(candidates)?;
        found.ok_or_else(|| self.exhausted(range, busy))
    }

    /// A spare: a few random candidates only, so that a nearly full range
    /// costs a successful call little and keeps its last ports for others.
    fn spare(&self) -> Option<(u16, Claim)> {
        let range = self.range;
        let start = fastrand::u32(..range.len());
        let candidates =
            (0..SPARE_CANDIDATES.min(range.len())).map(|i| range.nth_wrapping(start + i));
        self.first_free(candidates).ok()?.0
    }

    /// The first of `candidates` reserved and free, and how many were busy.
    fn first_free(
        &self,
        candidates: impl Iterator<Item = u16>,
    ) -> Result<(Option<(u16, Claim)>, u32), PortError> {
        let mut busy = 0u32;
        for port in candidates {
            if port == 0 || self.fixed.contains(&port) {
                continue;
            }
            let Some(claim) = self.claim(port)? else {
                continue;
            };
            let strictness = if busy < STRICT_CANDIDATES {
                Strictness::Strict
            } else {
                Strictness::AllowTimeWait
            };
            if !bind_check::is_free(port, strictness) {
                busy += 1;
                continue; // dropping `claim` releases it
            }
            return Ok((Some((port, claim)), busy));
        }
        Ok((None, busy))
    }

    /// The error for a search of `range` that found nothing.
    fn exhausted(&self, range: PortRange, busy: u32) -> PortError {
        let (reserved, unlisted) = match self.names.live_in(range) {
            Ok(live) => (live, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        PortError::Exhausted(Box::new(Exhausted {
            range,
            reserved,
            unlisted,
            busy,
        }))
    }

    fn claim(&self, port: u16) -> Result<Option<Claim>, PortError> {
        self.names
            .try_reserve(port)
            .map_err(|source| PortError::Reserve {
                port,
                name: self.names.port_name(port),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ports_are_distinct_while_held_and_reusable_after() {
        let held: Vec<Port> = (0..50).map(|_| find_free_port().unwrap()).collect();
        let numbers: HashSet<u16> = held.iter().map(|p| p.get()).collect();
        assert_eq!(numbers.len(), 50);
        let range = PortRange::dynamic_from_env().unwrap();
        assert!(held.iter().all(|p| range.contains(p.get())));
        // Each reserved port is bindable by the holder.
        for p in &held {
            std::net::TcpListener::bind(p.addr()).unwrap();
        }
        // Released, a number is free again: its name can be bound at once.
        let first = held[0].get();
        drop(held);
        assert!(
            NAMES.try_reserve(first).unwrap().is_some(),
            "{first} still reserved"
        );
    }

    #[test]
    fn threads_never_share_a_port() {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..40)
                        .map(|_| find_free_port().unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<Port> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let numbers: HashSet<u16> = all.iter().map(|p| p.get()).collect();
        assert_eq!(numbers.len(), all.len());
    }

    #[test]
    fn from_base_skips_held_and_busy_ports() {
        // A base far from other tests' 8000+ and from the dynamic range.
        let base = 45100;
        let first = find_free_port_from(base).unwrap();
        let second = find_free_port_from(base).unwrap();
        assert!(
            first.get() >= base && second.get() > first.get(),
            "held: skipped"
        );
        // The holder binds its number, then gives up the reservation: the
        // number is free of reservations but busy, and must not be handed out.
        let busy = first.get();
        let listener = std::net::TcpListener::bind(("127.0.0.1", busy)).unwrap();
        drop(first);
        let again = find_free_port_from(base).unwrap();
        assert!(again.get() >= base, "{again}");
        assert_ne!(again.get(), busy, "busy: skipped");
        assert_ne!(again.get(), second.get(), "held: skipped");
        drop(listener);
    }

    #[test]
    fn the_fixed_service_ports_are_never_handed_out() {
        // A private allocator (names of its own) whose "fixed" ports are
        // free numbers: only the rule, not a running etcd, can keep them out.
        let names: &'static Names = Box::leak(Box::new(Names::new(&format!(
            "dynamo-test-unit/fixed/{}",
            std::process::id()
        ))));
        // Strictly free (not in TIME_WAIT): the private scan below has too
        // few candidates to fall back to TIME_WAIT ports.
        let strictly_free = || loop {
            let port = find_free_port().unwrap();
            if bind_check::is_free(port.get(), Strictness::Strict) {
                return port;
            }
        };
        let free: Vec<Port> = (0..5).map(|_| strictly_free()).collect();
        // (still reserved under the real names, so no other test binds them)
        let n: Vec<u16> = free.iter().map(|p| p.get()).collect();
        let allocator = Allocator {
            names,
            range: PortRange::dynamic_from_env().unwrap(),
            fixed: [n[0], n[1], n[2], n[3]],
        };
        let range = allocator.range;
        let (got, _claim) = allocator.scan(range, n.iter().copied()).unwrap();
        assert_eq!(got, n[4], "the four fixed ones were skipped");
        drop((got, free));
    }

    #[test]
    fn into_listener_binds_the_reserved_number() {
        let port = find_free_port().unwrap();
        let number = port.get();
        let listener = port.into_std_listener().unwrap();
        assert_eq!(listener.local_addr().unwrap().port(), number);
        assert!(!bind_check::is_free(number, Strictness::AllowTimeWait));
    }

    #[test]
    fn accessors() {
        let port = find_free_port().unwrap();
        assert_eq!(*port, port.get());
        assert_eq!(port.to_string(), port.get().to_string());
        assert_eq!(
            port.url("/health"),
            format!("http://127.0.0.1:{}/health", port.get())
        );
        assert_eq!(port.addr().port(), port.get());
    }

    #[test]
    fn exhaustion_names_range_and_holders() {
        let e = Exhausted {
            range: PortRange {
                low: 100,
                high: 101,
            },
            reserved: vec![
                Reservation {
                    port: 100,
                    holder: Some(Holder::me("suite::a")),
                },
                Reservation {
                    port: 101,
                    holder: Some(Holder::me("suite::a")),
                },
            ],
            unlisted: None,
            busy: 0,
        };
        let msg = e.to_string();
        assert!(msg.contains("range 100-101"), "{msg}");
        assert!(
            msg.contains(&format!("2 held by pid {} (suite::a)", std::process::id())),
            "{msg}"
        );
        // A holder in a container: its pid means nothing here, and says so.
        let mut far = Holder::me("suite::b");
        far.pid_namespace = Some(1);
        let e = Exhausted {
            reserved: vec![Reservation {
                port: 100,
                holder: Some(far),
            }],
            ..e
        };
        let msg = e.to_string();
        assert!(
            msg.contains("in PID namespace 1, not ours (suite::b)"),
            "{msg}"
        );
        assert!(msg.contains("DYNAMO_TEST_PORT_RANGE"), "{msg}");
        // Holders that could not be listed are not "0 reserved".
        let e = Exhausted {
            reserved: Vec::new(),
            unlisted: Some("Permission denied".into()),
            ..e
        };
        let msg = e.to_string();
        assert!(
            msg.contains("reserved by harness users: unknown (cannot list /proc/net/unix: Permission denied)"),
            "{msg}"
        );
    }

    #[test]
    fn a_port_that_cannot_be_bound_says_which() {
        let port = find_free_port().unwrap();
        let number = port.get();
        // Someone else binds the number first (a misbehaving neighbour).
        let squatter = std::net::TcpListener::bind(("127.0.0.1", number)).unwrap();
        let err = port.into_std_listener().unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&format!("reserved port {number}")), "{text}");
        let io: std::io::Error = err.into();
        assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse);
        assert!(io.to_string().contains(&number.to_string()), "{io}");
        drop(squatter);
    }
}
