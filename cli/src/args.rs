//! Command-line parsing: a subcommand, its arguments, and the global flags.

use std::time::Duration;

pub const USAGE: &str = "\
usage: dynamo-test [--json] [--no-color] <command> [args]

commands:
  ports                        the port plan, who holds the fixed ports, live reservations
  doctor                       binaries, directories, ranges, overrides, stale leftovers
  up [etcd] [nats]             start the shared services for a development loop (default: both)
  down                         stop what `up` started
  wait URL... [--timeout 30s]  wait until every URL is ready (http://, https://, tcp://, etcd://, nats://)
  clean [--dry-run] [--days N] remove leftovers no live process owns (output dirs older than N days,
                               default 7; orphan processes; shared services whose keeper died)

--json prints machine-readable output for every command.";

/// A parsed command line.
#[derive(Debug, PartialEq)]
pub struct Args {
    pub json: bool,
    pub color: bool,
    pub command: Command,
}

/// What to do.
#[derive(Debug, PartialEq)]
pub enum Command {
    Ports,
    Doctor,
    Up {
        etcd: bool,
        nats: bool,
    },
    Down,
    Wait {
        urls: Vec<String>,
        timeout: Duration,
    },
    Clean {
        dry_run: bool,
        days: u64,
    },
}

/// Parses `args` (without the program name). `Err` is a usage error.
pub fn parse(args: &[String]) -> Result<Args, String> {
    let mut json = false;
    let mut color = true;
    let mut rest = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--json" => json = true,
            "--no-color" => color = false,
            _ => rest.push(arg.as_str()),
        }
    }
    let (name, tail) = rest.split_first().ok_or("no command given")?;
    let command = match *name {
        "ports" => no_args("ports", tail, Command::Ports)?,
        "doctor" => no_args("doctor", tail, Command::Doctor)?,
        "down" => no_args("down", tail, Command::Down)?,
        "up" => parse_up(tail)?,
        "wait" => parse_wait(tail)?,
        "clean" => parse_clean(tail)?,
        "help" | "--help" | "-h" => return Err(String::new()),
        other => return Err(format!("unknown command `{other}`")),
    };
    Ok(Args {
        json,
        color,
        command,
    })
}

fn no_args(name: &str, tail: &[&str], command: Command) -> Result<Command, String> {
    match tail.first() {
        None => Ok(command),
        Some(extra) => Err(format!("`{name}` takes no arguments (got `{extra}`)")),
    }
}

fn parse_up(tail: &[&str]) -> Result<Command, String> {
    if tail.is_empty() {
        return Ok(Command::Up {
            etcd: true,
            nats: true,
        });
    }
    let (mut etcd, mut nats) = (false, false);
    for service in tail {
        match *service {
            "etcd" => etcd = true,
            "nats" => nats = true,
            other => {
                return Err(format!(
                    "unknown service `{other}`: `up` takes etcd and nats"
                ))
            }
        }
    }
    Ok(Command::Up { etcd, nats })
}

fn parse_wait(tail: &[&str]) -> Result<Command, String> {
    let mut urls = Vec::new();
    let mut timeout = Duration::from_secs(30);
    let mut i = 0;
    while i < tail.len() {
        if tail[i] == "--timeout" {
            let value = tail
                .get(i + 1)
                .ok_or("--timeout needs a value, e.g. --timeout 30s")?;
            timeout = parse_duration(value)?;
            i += 2;
        } else {
            let url = tail[i];
            check_scheme(url)?;
            urls.push(url.to_string());
            i += 1;
        }
    }
    if urls.is_empty() {
        return Err("`wait` needs at least one URL".into());
    }
    Ok(Command::Wait { urls, timeout })
}

fn parse_clean(tail: &[&str]) -> Result<Command, String> {
    let mut dry_run = false;
    let mut days = 7;
    let mut i = 0;
    while i < tail.len() {
        match tail[i] {
            "--dry-run" => dry_run = true,
            "--days" => {
                let value = tail.get(i + 1).ok_or("--days needs a number")?;
                days = value
                    .parse()
                    .map_err(|_| format!("bad --days value `{value}`: expected a whole number"))?;
                i += 1;
            }
            other => return Err(format!("unknown `clean` argument `{other}`")),
        }
        i += 1;
    }
    Ok(Command::Clean { dry_run, days })
}

const SCHEMES: [&str; 5] = ["http://", "https://", "tcp://", "etcd://", "nats://"];

fn check_scheme(url: &str) -> Result<(), String> {
    if SCHEMES.iter().any(|s| url.starts_with(s)) {
        Ok(())
    } else {
        Err(format!(
            "unsupported URL `{url}`: use one of {}",
            SCHEMES.join(", ")
        ))
    }
}

/// `500ms`, `30s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits = text.chars().take_while(|c| c.is_ascii_digit()).count();
    let (number, unit) = text.split_at(digits);
    let bad = || format!("bad duration `{text}`: expected e.g. 500ms, 30s or 2m");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        _ => return Err(bad()),
    };
    if ms == 0 {
        return Err(bad());
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, String> {
        parse(
            &line
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn commands_and_flags() {
        assert_eq!(
            args("--json ports").unwrap(),
            Args {
                json: true,
                color: true,
                command: Command::Ports
            }
        );
        assert_eq!(
            args("up nats").unwrap().command,
            Command::Up {
                etcd: false,
                nats: true
            }
        );
        // Naming a service twice is harmless: it is started once.
        assert_eq!(
            args("up etcd etcd").unwrap().command,
            Command::Up {
                etcd: true,
                nats: false
            }
        );
        assert_eq!(
            args("up").unwrap().command,
            Command::Up {
                etcd: true,
                nats: true
            }
        );
        let wait = args("wait http://a/ tcp://b:1 --timeout 2s")
            .unwrap()
            .command;
        assert_eq!(
            wait,
            Command::Wait {
                urls: vec!["http://a/".into(), "tcp://b:1".into()],
                timeout: Duration::from_secs(2)
            }
        );
        assert_eq!(
            args("clean --dry-run --days 3").unwrap().command,
            Command::Clean {
                dry_run: true,
                days: 3
            }
        );
    }

    #[test]
    fn usage_errors_name_the_problem() {
        assert!(args("").unwrap_err().contains("no command"));
        assert!(args("frobnicate")
            .unwrap_err()
            .contains("unknown command `frobnicate`"));
        assert!(args("up redis")
            .unwrap_err()
            .contains("unknown service `redis`"));
        assert!(args("wait ftp://x")
            .unwrap_err()
            .contains("unsupported URL `ftp://x`"));
        assert!(args("wait http://x --timeout soon")
            .unwrap_err()
            .contains("bad duration `soon`"));
        assert!(args("ports extra")
            .unwrap_err()
            .contains("takes no arguments"));
        assert!(args("clean --days x").unwrap_err().contains("bad --days"));
    }
}
