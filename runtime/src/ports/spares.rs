//! Spare reservations: when a thread reserves ports in quick succession,
//! one search reserves a few more for its next calls.
//!
//! A search costs a reservation, a TCP check and a holder record, each a
//! socket and a bind, and most of that cost is the first system calls
//! after a thread wakes (BENCHMARKS.md, "Spare reservations (issue 10)").
//! A test that reserves its ports one after another pays it once per
//! batch: the next calls take a spare (one `getpid`, no socket call).
//!
//! Spares belong to one thread and one label (the label their holder
//! record already names): a spare is only handed out to a later call of
//! the same thread with the same label, which under libtest is the same
//! test (each test runs on a thread of its own, named after it). A spare
//! is a real reservation, so no one else gets it while it is kept. It is
//! never handed out once older than [`MAX_AGE`] (its TCP check is at most
//! that old); an unused one is released at the thread's next call, when
//! its label changes, or when the thread ends, so a test that stops
//! reserving keeps at most [`BATCH`] spares until it ends. A thread that
//! reserves only now and then gets none, and neither does a small range,
//! where a spare could be the port another process is waiting for. A
//! child forked without exec inherits the copies and closes them at its
//! first call, never handing one out.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::range::PortRange;
use super::reservation::Claim;

/// How many spares one search reserves after the port it was for.
pub(super) const BATCH: usize = 3;

/// Spares older than this are released, not handed out; and calls
/// further apart than this reserve no spares.
pub(super) const MAX_AGE: Duration = Duration::from_millis(500);

/// Ranges smaller than this get no spares.
pub(super) const MIN_RANGE: u32 = 1024;

/// One port reserved ahead, its holder recorded under the thread's label.
#[derive(Debug)]
pub(super) struct Spare {
    /// The reserved port.
    pub(super) port: u16,
    /// Its names, the holder record included.
    pub(super) claim: Claim,
    /// When it was reserved and checked free.
    checked: Instant,
}

impl Spare {
    /// `port`, reserved, recorded and checked free just now.
    pub(super) fn new(port: u16, claim: Claim) -> Spare {
        Spare {
            port,
            claim,
            checked: Instant::now(),
        }
    }
}

/// A thread's spares and its recent calls.
#[derive(Debug, Default)]
pub(super) struct Spares {
    /// The process they belong to: a child forked without exec inherits
    /// them (descriptors and all), and must never hand out its parent's.
    pid: u32,
    label: String,
    last_call: Option<Instant>,
    /// Calls in a row, each within [`MAX_AGE`] of the one before.
    streak: usize,
    held: Vec<Spare>,
}

/// What a call finds in its thread's spares.
pub(super) enum Found {
    /// A fresh spare for the label.
    Spare(Spare),
    /// None: search, and reserve this many spares after it (0 for a
    /// first call, calls far apart, or a small range).
    Search { spares: usize },
}

impl Spares {
    /// A call for `label` in `range` at `now`, from process `pid`.
    pub(super) fn call(&mut self, pid: u32, label: &str, range: PortRange, now: Instant) -> Found {
        if self.pid != pid {
            // Forked: the copies close here, the parent's stay its own.
            *self = Spares {
                pid,
                ..Spares::default()
            };
        }
        if self.label != label {
            self.held.clear();
            self.label = label.to_string();
            self.last_call = None;
        }
        let frequent = self
            .last_call
            .is_some_and(|last| now.saturating_duration_since(last) < MAX_AGE);
        self.streak = if frequent { self.streak + 1 } else { 0 };
        self.last_call = Some(now);
        self.held
            .retain(|s| now.saturating_duration_since(s.checked) < MAX_AGE);
        if let Some(spare) = self.held.pop() {
            return Found::Spare(spare);
        }
        // As many spares as calls came in a row (at most BATCH): a test
        // that reserves two ports wastes at most one.
        let spares = if range.len() >= MIN_RANGE {
            self.streak.min(BATCH)
        } else {
            0
        };
        Found::Search { spares }
    }

    /// Keeps `spare` (recorded under the current label) for a later call.
    pub(super) fn keep(&mut self, spare: Spare) {
        self.held.push(spare);
    }
}

thread_local! {
    static THREAD_SPARES: RefCell<Spares> = RefCell::default();
}

/// Runs `f` with this thread's spares; `None` while the thread is being
/// torn down (its spares are gone then) or, should it ever happen, when
/// they are already borrowed.
pub(super) fn with_thread_spares<T>(f: impl FnOnce(&mut Spares) -> T) -> Option<T> {
    THREAD_SPARES
        .try_with(|spares| spares.try_borrow_mut().ok().map(|mut s| f(&mut s)))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::super::reservation::Names;
    use super::*;

    const RANGE: PortRange = PortRange {
        low: 20000,
        high: 32767,
    };

    fn private_names() -> Names {
        Names::new(&format!("dynamo-test-unit/spares/{}", std::process::id()))
    }

    fn searched(found: Found) -> Option<usize> {
        match found {
            Found::Search { spares } => Some(spares),
            Found::Spare(_) => None,
        }
    }

    const PID: u32 = 1;

    #[test]
    fn calls_in_a_row_in_a_large_range_reserve_more_spares() {
        let mut at = Instant::now();
        let mut spares = Spares::default();
        let mut call = |after: Duration, range: PortRange| {
            at += after;
            searched(spares.call(PID, "t", range, at))
        };
        let soon = Duration::from_millis(10);
        assert_eq!(call(soon, RANGE), Some(0), "first call");
        assert_eq!(call(soon, RANGE), Some(1));
        assert_eq!(call(soon, RANGE), Some(2));
        assert_eq!(call(soon, RANGE), Some(BATCH));
        assert_eq!(call(soon, RANGE), Some(BATCH), "at most BATCH");
        assert_eq!(call(MAX_AGE, RANGE), Some(0), "too far apart");
        let small = PortRange {
            low: 100,
            high: 200,
        };
        assert_eq!(call(soon, small), Some(0), "small range");
    }

    #[test]
    fn hands_out_fresh_spares_of_its_label_and_releases_the_rest() {
        let names = private_names();
        let now = Instant::now();
        let reserved = |port: u16, checked: Instant| Spare {
            port,
            claim: names.try_reserve(port).unwrap().unwrap(),
            checked,
        };
        let mut spares = Spares::default();
        spares.call(PID, "a", RANGE, now);
        spares.keep(reserved(1, now - MAX_AGE));
        spares.keep(reserved(2, now));
        let Found::Spare(got) = spares.call(PID, "a", RANGE, now) else {
            panic!("the fresh spare")
        };
        assert_eq!(got.port, 2);
        assert!(
            names.try_reserve(1).unwrap().is_some(),
            "stale spare released"
        );

        // Another label never gets a spare recorded under this one.
        spares.keep(reserved(3, now));
        assert!(searched(spares.call(PID, "b", RANGE, now)).is_some());
        assert!(
            names.try_reserve(3).unwrap().is_some(),
            "released on the change"
        );

        // A forked child never hands out what its parent holds.
        spares.keep(reserved(4, now));
        assert!(searched(spares.call(PID + 1, "b", RANGE, now)).is_some());
        assert!(
            names.try_reserve(4).unwrap().is_some(),
            "dropped by the child"
        );
    }

    #[test]
    fn a_thread_s_spares_go_with_the_thread() {
        let names: &'static Names = Box::leak(Box::new(Names::new(&format!(
            "dynamo-test-unit/spares-thread/{}",
            std::process::id()
        ))));
        std::thread::spawn(move || {
            with_thread_spares(|s| {
                s.call(PID, "t", RANGE, Instant::now());
                s.keep(Spare::new(9, names.try_reserve(9).unwrap().unwrap()));
            })
            .unwrap();
        })
        .join()
        .unwrap();
        assert!(
            names.try_reserve(9).unwrap().is_some(),
            "released at thread exit"
        );
    }
}
