//! The range random ports come from.
//!
//! Random ports are taken below the kernel's ephemeral range, so that the
//! ports the kernel hands to outgoing connections (and to `bind(0)`) never
//! land on a port we reserved, and never above 32767: Dynamo parses some
//! ports (`DYN_SYSTEM_PORT`) as `i16`.

use std::fmt;

use crate::env::{self, EnvError, Lookup};

/// Env var overriding the dynamic range, as `LOW-HIGH` (inclusive).
pub const ENV_PORT_RANGE: &str = "DYNAMO_TEST_PORT_RANGE";

/// Lowest port of the default dynamic range.
pub const DEFAULT_RANGE_LOW: u16 = 20000;

/// The default dynamic range never goes above this port, whatever the
/// kernel's ephemeral range: Dynamo's Rust code parses some ports as `i16`
/// (`i16::MAX`). `DYNAMO_TEST_PORT_RANGE` may go higher.
pub const DEFAULT_RANGE_HIGH: u16 = i16::MAX as u16;

const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Linux's default ephemeral range starts here; used where /proc cannot be read.
const DEFAULT_EPHEMERAL_LOW: u16 = 32768;

/// An inclusive range of TCP ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// Lowest port of the range.
    pub low: u16,
    /// Highest port of the range (inclusive).
    pub high: u16,
}

impl PortRange {
    /// How many ports the range holds.
    pub fn len(&self) -> u32 {
        u32::from(self.high) - u32::from(self.low) + 1
    }

    /// Whether the range is empty (never true for a constructed range).
    pub fn is_empty(&self) -> bool {
        self.high < self.low
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }

    /// The port at `offset` from `low`, wrapping around.
    pub(crate) fn nth_wrapping(&self, offset: u32) -> u16 {
        let n = offset % self.len();
        // In range by construction: low + n <= high.
        (u32::from(self.low) + n) as u16
    }

    /// The dynamic range in force: `DYNAMO_TEST_PORT_RANGE`, else
    /// `[20000, min(ephemeral_low, 32768))` with `ephemeral_low` read from
    /// `/proc/sys/net/ipv4/ip_local_port_range`: below the kernel's
    /// ephemeral range and at most [`DEFAULT_RANGE_HIGH`] (32767).
    pub fn dynamic_from_env() -> Result<PortRange, EnvError> {
        Self::dynamic_from(&env::process_env, ephemeral_low())
    }

    fn dynamic_from(vars: Lookup, ephemeral_low: u16) -> Result<PortRange, EnvError> {
        if let Some(value) = env::var(vars, ENV_PORT_RANGE)? {
            return parse_range(&value).ok_or_else(|| {
                EnvError::new(
                    ENV_PORT_RANGE,
                    &value,
                    "LOW-HIGH with 1 <= LOW <= HIGH <= 65535, e.g. 20000-32767",
                )
            });
        }
        let high = ephemeral_low.saturating_sub(1).min(DEFAULT_RANGE_HIGH);
        if high < DEFAULT_RANGE_LOW + 1000 {
            let shown = format!("ephemeral range starts at {ephemeral_low}");
            return Err(EnvError::new(
                ENV_PORT_RANGE,
                "(unset)",
                format!(
                    "a range to be set: the {shown}, leaving no room above {DEFAULT_RANGE_LOW}"
                ),
            ));
        }
        Ok(PortRange {
            low: DEFAULT_RANGE_LOW,
            high,
        })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

fn parse_range(text: &str) -> Option<PortRange> {
    let (low, high) = text.trim().split_once('-')?;
    let low: u16 = low.trim().parse().ok()?;
    let high: u16 = high.trim().parse().ok()?;
    (low >= 1 && low <= high).then_some(PortRange { low, high })
}

/// The first port of the kernel's ephemeral range.
pub fn ephemeral_low() -> u16 {
    ephemeral_range().map_or(DEFAULT_EPHEMERAL_LOW, |r| r.low)
}

/// The kernel's ephemeral range, if it can be read.
pub fn ephemeral_range() -> Option<PortRange> {
    let text = std::fs::read_to_string(EPHEMERAL_RANGE_FILE).ok()?;
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    let low = parts.next()?.ok()?;
    let high = parts.next()?.ok()?;
    Some(PortRange { low, high })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::tests::vars;

    #[test]
    fn default_range_ends_below_the_ephemeral_range() {
        let r = PortRange::dynamic_from(&vars(&[]), 32768).unwrap();
        assert_eq!(
            r,
            PortRange {
                low: 20000,
                high: 32767
            }
        );
        assert_eq!(r.len(), 12768);
    }

    #[test]
    fn the_default_range_never_goes_above_32767() {
        // A kernel whose ephemeral range starts high (40000-60999): the
        // room below it is not all ours, Dynamo's i16 ports end at 32767.
        for ephemeral_low in [32769, 40000, 61000, u16::MAX] {
            let r = PortRange::dynamic_from(&vars(&[]), ephemeral_low).unwrap();
            assert_eq!((r.low, r.high), (20000, 32767), "{ephemeral_low}");
            assert_eq!(r.high, i16::MAX as u16);
        }
        // Below 32768 the ephemeral range still bounds it.
        let r = PortRange::dynamic_from(&vars(&[]), 30000).unwrap();
        assert_eq!((r.low, r.high), (20000, 29999));
        // The override may go higher: a choice made by whoever sets it.
        let r = PortRange::dynamic_from(&vars(&[(ENV_PORT_RANGE, "40000-50000")]), 40000).unwrap();
        assert_eq!((r.low, r.high), (40000, 50000));
    }

    #[test]
    fn env_override_and_its_errors() {
        let r = PortRange::dynamic_from(&vars(&[(ENV_PORT_RANGE, "40000-40009")]), 32768).unwrap();
        assert_eq!((r.low, r.high, r.len()), (40000, 40009, 10));
        for bad in ["40000", "9-1", "a-b", "0-10", "1-70000"] {
            let err = PortRange::dynamic_from(&vars(&[(ENV_PORT_RANGE, bad)]), 32768).unwrap_err();
            assert!(err.to_string().contains(ENV_PORT_RANGE), "{err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn a_low_ephemeral_range_asks_for_an_override() {
        // Below 20000, and too close above it (fewer than 1000 ports left).
        for ephemeral_low in [10000, 20500] {
            let err = PortRange::dynamic_from(&vars(&[]), ephemeral_low).unwrap_err();
            let text = err.to_string();
            let starts = format!("ephemeral range starts at {ephemeral_low}");
            assert!(text.contains(&starts), "{text}");
            assert!(text.contains(ENV_PORT_RANGE), "{text}");
        }
        let r = PortRange::dynamic_from(&vars(&[]), 21001).unwrap();
        assert_eq!((r.low, r.high), (20000, 21000));
    }

    #[test]
    fn wrapping_stays_in_range() {
        let r = PortRange {
            low: 100,
            high: 102,
        };
        let got: Vec<u16> = (0..5).map(|i| r.nth_wrapping(i)).collect();
        assert_eq!(got, [100, 101, 102, 100, 101]);
    }

    #[test]
    fn reads_this_machines_ephemeral_range() {
        let r = ephemeral_range().expect("linux exposes the ephemeral range");
        assert!(r.low <= r.high);
    }
}
