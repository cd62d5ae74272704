//! `mock_model_server`: runs the mock OpenAI-compatible model server from
//! [`dynamo_test_examples::mock_server`] as its own process, with knobs for
//! simulating slow, unhealthy, crashing or stubborn applications.
//!
//! Exit codes: 2 for usage errors and `--crash-on-start`, 3 for
//! `--exit-after`, 1 if the port cannot be bound or serving fails.

use std::process::exit;
use std::time::Duration;

use dynamo_test_examples::mock_server::{self, print_line, MockServerConfig};

const USAGE: &str = "\
usage: mock_model_server --port N [options]

options:
  --port N                  port to listen on (required; 0 picks a free one)
  --host ADDR               address to bind (default 127.0.0.1)
  --model NAME              model to serve; repeatable (default: mock-model)
  --startup-delay DURATION  time before the models count as loaded
  --listen-delay DURATION   time before the port is even bound
  --fail-health             /health answers 503 forever
  --exit-after DURATION     exit with code 3 after DURATION (from process start)
  --crash-on-start          print an error and exit with code 2 immediately
  --ignore-sigterm          ignore SIGTERM (for teardown tests)
  -h, --help                show this help

DURATION takes a unit (ms, s, m, h): 500ms, 2s, 1m 30s, 1h; 0s for none.";

/// Parsed command line.
#[derive(Debug, Clone, PartialEq)]
struct Cli {
    port: u16,
    host: String,
    models: Vec<String>,
    startup_delay: Duration,
    listen_delay: Duration,
    fail_health: bool,
    exit_after: Option<Duration>,
    crash_on_start: bool,
    ignore_sigterm: bool,
}

/// Why the command line was not turned into a [`Cli`].
#[derive(Debug, PartialEq)]
enum CliError {
    Help,
    Invalid(String),
}

#[tokio::main]
async fn main() {
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(CliError::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(CliError::Invalid(message)) => {
            eprintln!("mock_model_server: {message}\n\n{USAGE}");
            exit(2);
        }
    };
    if cli.crash_on_start {
        eprintln!("mock-model-server: error: crashing on start as requested (--crash-on-start)");
        exit(2);
    }
    if cli.ignore_sigterm {
        ignore_sigterm();
    }
    if let Some(after) = cli.exit_after {
        tokio::spawn(exit_later(after));
    }
    run(cli).await;
}

/// Binds (after the listen delay), announces the address, then serves forever.
async fn run(cli: Cli) {
    tokio::time::sleep(cli.listen_delay).await;
    let listener = match tokio::net::TcpListener::bind((cli.host.as_str(), cli.port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "mock-model-server: error: cannot bind {}:{}: {err}",
                cli.host, cli.port
            );
            exit(1);
        }
    };
    // Report the real address so `--port 0` is usable too.
    let addr = listener
        .local_addr()
        .map(|addr| addr.to_string())
        .unwrap_or_default();
    print_line(&format!("mock-model-server listening on {addr}"));

    let config = MockServerConfig {
        models: cli.models,
        startup_delay: cli.startup_delay,
        fail_health: cli.fail_health,
    };
    if let Err(err) = mock_server::serve(listener, config).await {
        eprintln!("mock-model-server: error: server failed: {err}");
        exit(1);
    }
}

async fn exit_later(after: Duration) {
    tokio::time::sleep(after).await;
    eprintln!("mock-model-server: exiting with code 3 after {after:?} as requested (--exit-after)");
    exit(3);
}

/// Makes the process immune to SIGTERM so teardown tests can check that the
/// harness escalates to SIGKILL.
fn ignore_sigterm() {
    // SAFETY: installing SIG_IGN has no handler code to run and is done
    // before any other code in this process touches SIGTERM.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Cli, CliError> {
    let mut args = args.into_iter();
    let mut port = None;
    let mut cli = Cli {
        port: 0,
        host: "127.0.0.1".to_string(),
        models: Vec::new(),
        startup_delay: Duration::ZERO,
        listen_delay: Duration::ZERO,
        fail_health: false,
        exit_after: None,
        crash_on_start: false,
        ignore_sigterm: false,
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "-h" | "--help" => return Err(CliError::Help),
            "--port" => port = Some(parse_value(&flag, args.next(), |v| v.parse().ok())?),
            "--host" => cli.host = parse_value(&flag, args.next(), non_empty)?,
            "--model" => cli.models.push(parse_value(&flag, args.next(), non_empty)?),
            "--startup-delay" => {
                cli.startup_delay = parse_value(&flag, args.next(), parse_duration)?
            }
            "--listen-delay" => cli.listen_delay = parse_value(&flag, args.next(), parse_duration)?,
            "--exit-after" => {
                cli.exit_after = Some(parse_value(&flag, args.next(), parse_duration)?)
            }
            "--fail-health" => cli.fail_health = true,
            "--crash-on-start" => cli.crash_on_start = true,
            "--ignore-sigterm" => cli.ignore_sigterm = true,
            other => return Err(CliError::Invalid(format!("unknown argument `{other}`"))),
        }
    }
    cli.port = port.ok_or_else(|| CliError::Invalid("missing required --port".to_string()))?;
    if cli.models.is_empty() {
        cli.models.push(mock_server::DEFAULT_MODEL.to_string());
    }
    Ok(cli)
}

/// Parses the value following `flag`, reporting a missing or bad value.
fn parse_value<T>(
    flag: &str,
    value: Option<String>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, CliError> {
    let value = value.ok_or_else(|| CliError::Invalid(format!("{flag} needs a value")))?;
    parse(&value).ok_or_else(|| CliError::Invalid(format!("bad value `{value}` for {flag}")))
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

/// The harness's one duration grammar (`500ms`, `2s`, `1m 30s`, `1h`,
/// `0s`), that of its own `timeout = ".."`. It needs a unit, so a bare
/// `500` cannot be read as seconds by one tool and milliseconds by another.
fn parse_duration(text: &str) -> Option<Duration> {
    dynamo_test::admin::parse_duration(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, CliError> {
        parse_args(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn parses_humantime_durations() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("500ms", ms(500)),
            ("2s", ms(2_000)),
            ("1m", ms(60_000)),
            ("1m 30s", ms(90_000)),
            ("1m30s", ms(90_000)),
            ("1h", ms(3_600_000)),
            ("1.5s", ms(1_500)), // humantime 2.4 takes fractions
            ("0s", Duration::ZERO),
            ("0ms", Duration::ZERO),
        ] {
            assert_eq!(parse_duration(text), Some(want), "{text:?}");
        }
        for bad in [
            "",
            "500",
            "ms",
            "-1s",
            "infs",
            "1e3ms",
            "2x",
            "1.s",
            "5 parsecs",
            "0",
            "1d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_full_command_line() {
        let cli = parse(&[
            "--port",
            "18555",
            "--model",
            "a",
            "--model",
            "b",
            "--startup-delay",
            "300ms",
            "--fail-health",
        ])
        .unwrap();
        assert_eq!(cli.port, 18555);
        assert_eq!(cli.host, "127.0.0.1");
        assert_eq!(cli.models, ["a", "b"]);
        assert_eq!(cli.startup_delay, Duration::from_millis(300));
        assert!(cli.fail_health && !cli.ignore_sigterm && !cli.crash_on_start);
        assert_eq!(cli.exit_after, None);
    }

    #[test]
    fn duration_flags_take_compound_durations() {
        let cli = parse(&[
            "--port",
            "1",
            "--listen-delay",
            "1m 30s",
            "--exit-after",
            "0s",
        ])
        .unwrap();
        assert_eq!(cli.listen_delay, Duration::from_secs(90));
        assert_eq!(cli.exit_after, Some(Duration::ZERO));
    }

    #[test]
    fn defaults_to_one_mock_model() {
        assert_eq!(parse(&["--port", "1"]).unwrap().models, ["mock-model"]);
    }

    #[test]
    fn rejects_bad_command_lines() {
        for args in [
            &[][..],
            &["--port"],
            &["--port", "x"],
            &["--port", "1", "--bogus"],
            &["--port", "1", "--exit-after", "5"],
            &["--port", "1", "--startup-delay", "soon"],
        ] {
            assert!(matches!(parse(args), Err(CliError::Invalid(_))), "{args:?}");
        }
        assert_eq!(parse(&["--help"]), Err(CliError::Help));
    }
}
