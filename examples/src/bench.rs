//! Each binary keeps its own flags, defaults and messages; these are the
//! mechanics they have in common.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A benchmark's name and usage text, for `--help` and usage errors.
#[derive(Debug, Clone, Copy)]
pub struct Cli {
    /// The binary's name, prefixed to error messages.
    pub name: &'static str,
    /// The usage text printed by `--help` and after a usage error.
    pub usage: &'static str,
}

impl Cli {
    /// A benchmark's `main`: `--help` or `-h` anywhere prints the usage and
    /// succeeds; otherwise `parse` turns the arguments into a config that
    /// `run` runs, and a parse error is a usage error (see
    /// [`Cli::usage_error`]).
    pub fn main<C>(
        &self,
        args: &[String],
        parse: impl FnOnce(&[String]) -> Result<C, String>,
        run: impl FnOnce(&C) -> ExitCode,
    ) -> ExitCode {
        if args.iter().any(|a| a == "--help" || a == "-h") {
            println!("{}", self.usage);
            return ExitCode::SUCCESS;
        }
        match parse(args) {
            Ok(config) => run(&config),
            Err(msg) => self.usage_error(&msg),
        }
    }

    /// Prints `<name>: <msg>` and the usage on stderr; exit code 2.
    pub fn usage_error(&self, msg: &str) -> ExitCode {
        eprintln!("{}: {msg}\n{}", self.name, self.usage);
        ExitCode::from(2)
    }
}

/// `args` read as `--flag value` pairs, in order (the flag is not checked
/// here). A last flag without a value yields `Err("<flag> needs a value")`.
pub fn flag_pairs(args: &[String]) -> impl Iterator<Item = Result<(&str, &str), String>> {
    args.chunks(2).map(|pair| match pair {
        [flag, value] => Ok((flag.as_str(), value.as_str())),
        [flag] => Err(format!("{flag} needs a value")),
        _ => unreachable!("chunks(2) yields one or two items"),
    })
}

/// Reads `args` as `--flag N` pairs, in order, and hands each number to
/// `set` (which rejects unknown flags). A value that is not a number of at
/// least `min` is an error: `bad value "<value>" for <flag><hint>`.
pub fn number_flags(
    args: &[String],
    min: usize,
    hint: &str,
    mut set: impl FnMut(&str, usize) -> Result<(), String>,
) -> Result<(), String> {
    for pair in flag_pairs(args) {
        let (flag, value) = pair?;
        let n = value
            .parse()
            .ok()
            .filter(|&n| n >= min)
            .ok_or_else(|| format!("bad value {value:?} for {flag}{hint}"))?;
        set(flag, n)?;
    }
    Ok(())
}

/// Nearest-rank percentile (`p` in 0..=1) of sorted values; `None` if
/// there are none.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A duration in (fractional) milliseconds.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `show(value)`, or `-` without a value.
pub fn or_dash<T>(value: Option<T>, show: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| "-".to_string(), show)
}

/// A duration as `12.3 ms`, or `-` without one.
pub fn fmt_ms(d: Option<Duration>) -> String {
    or_dash(d, |d| format!("{:.1} ms", millis(d)))
}

/// A tokio runtime on the calling thread, with I/O and timers.
pub fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// xorshift64*: enough randomness for delays, without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock, the process id and `salt` (e.g. a thread
    /// index), so that generators started together still diverge.
    pub fn seeded(salt: u64) -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let mut z = nanos
            ^ (u64::from(std::process::id()) << 32)
            ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // splitmix64 finalizer, so that close seeds diverge at once.
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform-enough in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nearest_rank_percentile() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&v, 0.50), Some(5));
        assert_eq!(percentile(&v, 0.95), Some(10));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7u64], 0.99), Some(7));
        assert_eq!(percentile::<u64>(&[], 0.5), None);
    }

    #[test]
    fn formats_milliseconds() {
        assert_eq!(fmt_ms(Some(Duration::from_micros(12_345))), "12.3 ms");
        assert_eq!(fmt_ms(None), "-");
    }

    #[test]
    fn number_flags_in_order() {
        let mut seen = Vec::new();
        let set = |f: &str, n| {
            seen.push((f.to_string(), n));
            Ok(())
        };
        number_flags(&args(&["--a", "1", "--b", "0"]), 0, "", set).unwrap();
        assert_eq!(seen, [("--a".to_string(), 1), ("--b".to_string(), 0)]);
        let err = |a: &[&str]| number_flags(&args(a), 1, ": >= 1", |_, _| Ok(())).unwrap_err();
        assert_eq!(err(&["--a"]), "--a needs a value");
        assert_eq!(err(&["--a", "0"]), "bad value \"0\" for --a: >= 1");
        assert_eq!(err(&["--a", "x", "--b"]), "bad value \"x\" for --a: >= 1");
    }

    #[test]
    fn rng_stays_in_range() {
        let mut rng = Rng::seeded(1);
        for _ in 0..1000 {
            assert!((50..=300).contains(&rng.between(50, 300)));
            assert!(rng.below(3) < 3);
        }
    }
}
