//! Command-line parsing (clap): a subcommand, its arguments, and the global
//! flags `--json` and `--no-color`, valid before or after the subcommand.
//! A usage error exits 2 with the usage; `--help` (of each subcommand) and
//! `--version` exit 0.

use std::ffi::OsString;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// See ports, services and reservations; run services for a development
/// loop; wait for URLs; clean leftovers. Stops only what the harness started.
#[derive(Debug, PartialEq, Parser)]
#[command(name = "dynamo-test", version, arg_required_else_help = false)]
pub struct Args {
    /// Print machine-readable JSON (every command)
    #[arg(long, global = true)]
    pub json: bool,
    /// No colour (there is none anyway when stdout is not a terminal or NO_COLOR is set)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, PartialEq, Subcommand)]
pub enum Command {
    /// The port plan, who holds the fixed ports, live reservations
    Ports,
    /// Binaries, directories, ranges, overrides, stale leftovers; exits 1 if something blocks the tests
    Doctor,
    /// Start the shared services for a development loop; tests reuse them and leave them running
    Up {
        /// The services to start [default: both]
        #[arg(value_enum, value_name = "SERVICE")]
        services: Vec<Service>,
    },
    /// Stop what `up` started (and nothing else)
    Down,
    /// Wait until every URL is ready (http://, https://, tcp://, etcd://, nats://)
    Wait {
        /// The URLs: http(s):// answers 2xx, tcp:// accepts, etcd:// is healthy, nats:// greets as NATS
        #[arg(required = true, value_name = "URL", value_parser = parse_url)]
        urls: Vec<String>,
        /// How long to wait for all of them, e.g. 500ms, 30s, 2m, 1h or "1m 30s"
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
        timeout: Duration,
    },
    /// Remove leftovers no live process owns: old output dirs, orphan processes, shared services whose keeper died
    Clean {
        /// Say what would be removed; remove nothing
        #[arg(long)]
        dry_run: bool,
        /// Remove output dirs not modified for N days (0: every one no running test holds)
        #[arg(long, value_name = "N", default_value = "7", value_parser = parse_days)]
        days: u64,
    },
}

/// A service `up` starts (no doc per value: the help lists them on one line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    Etcd,
    Nats,
}

/// The command line of this process; on a usage error or a help request,
/// prints and exits (2, or 0 for `--help` and `--version`).
pub fn parse() -> Args {
    let raw: Vec<OsString> = std::env::args_os().collect();
    match parse_from(raw.clone()) {
        Ok(args) => args,
        Err(e) if e.exit_code() == 2 => {
            eprintln!("{}", usage_message(&e, &raw));
            std::process::exit(2);
        }
        Err(e) => e.exit(),
    }
}

/// A usage error as the command has always worded it: `dynamo-test:
/// <problem>`, then the usage of the subcommand it is about.
pub fn usage_message(err: &clap::Error, raw: &[OsString]) -> String {
    let value = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(s)) => s.join(" "),
        _ => String::new(),
    };
    let problem = match err.kind() {
        ErrorKind::InvalidSubcommand => format!(
            "unknown command `{}`",
            value(ContextKind::InvalidSubcommand)
        ),
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "no command given".to_string()
        }
        ErrorKind::InvalidValue if value(ContextKind::InvalidArg).contains("SERVICE") => format!(
            "unknown service `{}`: `up` takes etcd and nats",
            value(ContextKind::InvalidValue)
        ),
        ErrorKind::UnknownArgument => match named_subcommand(raw) {
            Some(sub)
                if sub
                    .get_arguments()
                    .all(|a| a.is_global_set() || a.get_id() == "help") =>
            {
                format!(
                    "`{}` takes no arguments (got `{}`)",
                    sub.get_name(),
                    value(ContextKind::InvalidArg)
                )
            }
            _ => first_line(err),
        },
        _ => first_line(err),
    };
    let usage = match err.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(usage)) => usage.to_string(),
        _ => Args::command().render_usage().to_string(),
    };
    let usage = usage.trim().trim_start_matches("Usage: ");
    format!("dynamo-test: {problem}\n\nusage: {usage}\n\nSee `dynamo-test --help` (or `dynamo-test <command> --help`).")
}

/// Clap's own wording of the problem: the first line, without `error: `.
fn first_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.trim_start_matches("error: ").to_string()
}

/// The subcommand named in `raw`, if any.
fn named_subcommand(raw: &[OsString]) -> Option<clap::Command> {
    let mut command = Args::command();
    command.build();
    raw.iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .filter(|a| !a.starts_with('-'))
        .find_map(|a| command.find_subcommand(a).cloned())
}

/// Parses `raw` (with the program name first). A usage error carries the
/// usage of the command it is about.
pub fn parse_from(raw: Vec<OsString>) -> Result<Args, clap::Error> {
    Args::try_parse_from(&raw).map_err(|e| with_usage(e, &raw))
}

/// Adds the usage of the subcommand named in `raw` (else the command's) to
/// a usage error that has none: clap leaves it out of some (a bad value).
fn with_usage(mut err: clap::Error, raw: &[OsString]) -> clap::Error {
    if err.exit_code() != 2 || err.get(ContextKind::Usage).is_some() {
        return err;
    }
    let usage = match named_subcommand(raw) {
        Some(mut sub) => sub.render_usage(),
        None => Args::command().render_usage(),
    };
    err.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
    err
}

/// Which of etcd and NATS `up` starts: those named, both when none is.
/// Naming one twice is harmless: it is started once.
pub fn up_services(named: &[Service]) -> (bool, bool) {
    if named.is_empty() {
        return (true, true);
    }
    (
        named.contains(&Service::Etcd),
        named.contains(&Service::Nats),
    )
}

const SCHEMES: [&str; 5] = ["http://", "https://", "tcp://", "etcd://", "nats://"];

/// A URL `wait` can probe.
fn parse_url(url: &str) -> Result<String, String> {
    if SCHEMES.iter().any(|s| url.starts_with(s)) {
        Ok(url.to_string())
    } else {
        Err(format!(
            "unsupported URL `{url}`: use one of {}",
            SCHEMES.join(", ")
        ))
    }
}

/// A whole number of days (0 included).
fn parse_days(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("bad --days value `{text}`: expected a whole number of days, e.g. 7"))
}

/// `500ms`, `30s`, `2m`, `1h`, `1m 30s`: the harness's one duration
/// grammar (that of the macro's `timeout`); never zero.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let examples = "write e.g. 500ms, 30s, 2m, 1h or \"1m 30s\"";
    let timeout = dynamo_test::admin::parse_duration(text)
        .map_err(|why| format!("bad duration `{text}`: {why}; {examples}"))?;
    if timeout.is_zero() {
        return Err(format!(
            "bad duration `{text}`: a zero timeout waits for nothing; {examples}"
        ));
    }
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn args(line: &[&str]) -> Result<Args, clap::Error> {
        let raw = std::iter::once("dynamo-test").chain(line.iter().copied());
        parse_from(raw.map(OsString::from).collect())
    }

    /// The error's text as the command prints it, after checking that it
    /// is a usage error (exit 2) that shows the usage.
    fn usage_error(line: &[&str]) -> String {
        let err = args(line).expect_err("a usage error");
        assert_eq!(err.exit_code(), 2, "{line:?}: {err}");
        let raw: Vec<OsString> = std::iter::once("dynamo-test")
            .chain(line.iter().copied())
            .map(OsString::from)
            .collect();
        let text = format!("{}\n{err}", usage_message(&err, &raw));
        assert!(text.contains("usage: dynamo-test"), "{line:?}: {text}");
        text
    }

    #[test]
    fn the_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn commands_and_flags() {
        assert_eq!(
            args(&["--json", "ports"]).unwrap(),
            Args {
                json: true,
                no_color: false,
                command: Command::Ports
            }
        );
        assert_eq!(args(&["doctor"]).unwrap().command, Command::Doctor);
        assert_eq!(args(&["down"]).unwrap().command, Command::Down);
        let up = |line: &[&str]| match args(line).unwrap().command {
            Command::Up { services } => up_services(&services),
            other => panic!("{other:?}"),
        };
        assert_eq!(up(&["up", "nats"]), (false, true));
        // Naming a service twice is harmless: it is started once.
        assert_eq!(up(&["up", "etcd", "etcd"]), (true, false));
        assert_eq!(up(&["up"]), (true, true));
        assert_eq!(up(&["up", "nats", "etcd"]), (true, true));
        let wait = args(&["wait", "http://a/", "tcp://b:1", "--timeout", "2s"])
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
            args(&["clean", "--dry-run", "--days", "3"])
                .unwrap()
                .command,
            Command::Clean {
                dry_run: true,
                days: 3
            }
        );
        assert_eq!(
            args(&["clean"]).unwrap().command,
            Command::Clean {
                dry_run: false,
                days: 7
            }
        );
    }

    #[test]
    fn the_global_flags_go_before_or_after_the_command() {
        for line in [
            &["--json", "--no-color", "ports"][..],
            &["ports", "--json", "--no-color"],
            &["--no-color", "ports", "--json"],
        ] {
            let parsed = args(line).unwrap();
            assert!(parsed.json && parsed.no_color, "{line:?}");
        }
        // Even among the URLs of `wait`.
        let parsed = args(&["wait", "http://a/", "--json", "tcp://b:1"]).unwrap();
        assert!(parsed.json);
        assert!(matches!(parsed.command, Command::Wait { urls, .. } if urls.len() == 2));
    }

    #[test]
    fn timeouts_read_like_humans_write_them() {
        let timeout = |text: &str| match args(&["wait", "tcp://a:1", "--timeout", text])
            .unwrap()
            .command
        {
            Command::Wait { timeout, .. } => timeout,
            other => panic!("{other:?}"),
        };
        assert_eq!(timeout("500ms"), Duration::from_millis(500));
        assert_eq!(timeout("30s"), Duration::from_secs(30));
        assert_eq!(timeout("2m"), Duration::from_secs(120));
        assert_eq!(timeout("1h"), Duration::from_secs(3600));
        assert_eq!(timeout("1m 30s"), Duration::from_secs(90));
        // The default, and the flag before the URLs.
        assert_eq!(
            args(&["wait", "tcp://a:1"]).unwrap().command,
            Command::Wait {
                urls: vec!["tcp://a:1".into()],
                timeout: Duration::from_secs(30)
            }
        );
        assert!(args(&["wait", "--timeout", "1s", "tcp://a:1"]).is_ok());
    }

    #[test]
    fn usage_errors_name_the_problem_as_they_always_did() {
        assert!(usage_error(&[]).contains("no command"));
        assert!(usage_error(&["frobnicate"]).contains("unknown command `frobnicate`"));
        assert!(usage_error(&["up", "redis"]).contains("unknown service `redis`"));
        assert!(usage_error(&["wait", "ftp://x"]).contains("unsupported URL `ftp://x`"));
        assert!(
            usage_error(&["wait", "http://x", "--timeout", "soon"]).contains("bad duration `soon`")
        );
        assert!(usage_error(&["ports", "extra"]).contains("takes no arguments"));
        assert!(usage_error(&["clean", "--days", "x"]).contains("bad --days"));
    }

    #[test]
    fn usage_errors_name_the_problem() {
        assert!(usage_error(&[]).contains("requires a subcommand"));
        assert!(usage_error(&["--json"]).contains("requires a subcommand"));
        assert!(usage_error(&["frobnicate"]).contains("unrecognized subcommand 'frobnicate'"));
        let up = usage_error(&["up", "redis"]);
        assert!(up.contains("invalid value 'redis'"), "{up}");
        assert!(up.contains("[possible values: etcd, nats]"), "{up}");
        assert!(usage_error(&["wait", "ftp://x"]).contains("unsupported URL `ftp://x`"));
        assert!(usage_error(&["wait"]).contains("<URL>..."));
        assert!(usage_error(&["wait", "--timeout", "1s"]).contains("<URL>..."));
        // A bad timeout names the flag and the value.
        for bad in ["soon", "30", "0s", "0ms", "1parsec", "1d", "5us"] {
            let err = usage_error(&["wait", "http://x", "--timeout", bad]);
            assert!(
                err.contains(&format!("invalid value '{bad}' for '--timeout <DURATION>'")),
                "{err}"
            );
        }
        assert!(usage_error(&["wait", "http://x", "--timeout", "0s"]).contains("zero"));
        // Taken for a flag, and refused as well.
        assert!(usage_error(&["wait", "http://x", "--timeout", "-1s"]).contains("'-1'"));
        assert!(usage_error(&["wait", "http://x", "--timeout"]).contains("--timeout <DURATION>"));
        for command in ["ports", "doctor", "down"] {
            let err = usage_error(&[command, "extra"]);
            assert!(err.contains("unexpected argument 'extra'"), "{err}");
        }
        // The usage is the subcommand's.
        assert!(usage_error(&["wait", "ftp://x"])
            .contains("Usage: dynamo-test wait [OPTIONS] <URL>..."));
        assert!(usage_error(&["--json", "up", "redis"]).contains("Usage: dynamo-test up"));
        let days = usage_error(&["clean", "--days", "x"]);
        assert!(
            days.contains("invalid value 'x' for '--days <N>'"),
            "{days}"
        );
        assert!(usage_error(&["clean", "--days"]).contains("--days <N>"));
        assert!(usage_error(&["clean", "--force"]).contains("unexpected argument '--force'"));
    }

    #[test]
    fn help_is_not_an_error() {
        for line in [&["--help"][..], &["wait", "--help"], &["help", "clean"]] {
            let err = args(line).expect_err("help stops the parse");
            assert_eq!(err.kind(), ErrorKind::DisplayHelp, "{line:?}");
            assert_eq!(err.exit_code(), 0, "{line:?}");
        }
        let help = args(&["wait", "--help"]).unwrap_err().to_string();
        assert!(help.contains("--timeout <DURATION>"), "{help}");
        assert!(help.contains("[default: 30s]"), "{help}");
    }
}
