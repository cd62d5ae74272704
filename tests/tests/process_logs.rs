//! A managed process's log: bounded lines whatever it writes, its last
//! lines in the log before its exit is reported, and waits for log lines
//! (`.ready_log`, `wait_for_log`) on a real etcd.

use std::path::Path;
use std::time::Duration;

use dynamo_test::process::LogPattern;
use dynamo_test::{dynamo_test, find_free_port, health, Port, TestContext};

/// The bound of a log line (`line_splitter::MAX_LINE` in the runtime).
const MAX_LINE: usize = 64 * 1024;

#[dynamo_test(timeout = "60s")]
async fn a_10_mb_line_without_newline_lands_cut_in_bounded_lines(ctx: &TestContext) {
    const SIZE: usize = 10_000_000;
    let peak = PeakMemory::start();
    let writer = ctx
        .process("blob", "sh")
        .args([
            "-c",
            &format!("head -c {SIZE} /dev/zero | tr '\\0' x; printf 'tail-without-newline'"),
        ])
        .start()
        .await
        .unwrap();
    // Not blocked on a full pipe: it gets to its end and exits.
    assert!(writer.wait().await.success());
    if let Some(grown) = peak.grown_kib() {
        eprintln!("peak memory grew by {grown} KiB");
        // A reader that kept the line would hold 10 MB (16 MiB of Vec).
        assert!(grown < 8 * 1024, "peak memory grew by {grown} KiB");
    }
    let log = std::fs::read(writer.log_path()).unwrap();
    let lines: Vec<&[u8]> = log.split(|&b| b == b'\n').collect();
    assert_eq!(
        lines.last(),
        Some(&&b""[..]),
        "the log ends with a line end"
    );
    let lines = &lines[..lines.len() - 1];
    let longest = lines.iter().map(|l| l.len()).max().unwrap();
    assert_eq!(longest, MAX_LINE, "cut at the bound");
    let xs: usize = lines
        .iter()
        .map(|l| l.iter().filter(|&&b| b == b'x').count())
        .sum();
    assert_eq!(xs, SIZE, "every byte is in the log");
    // The text after the x's continues their last (cut) line, which never
    // got a line end: it is in the log all the same.
    assert_eq!(lines.len(), SIZE.div_ceil(MAX_LINE));
    let last = String::from_utf8_lossy(lines[lines.len() - 1]);
    assert!(
        last.ends_with("xtail-without-newline"),
        "{:?}",
        &last[..100]
    );
}

#[dynamo_test(timeout = "30s")]
async fn carriage_return_progress_is_readable_in_the_log(ctx: &TestContext) {
    // A progress bar redraws its line with `\r` and never ends it while it
    // runs: each state is a line, and a line ended by `\r` counts at once.
    let progress = ctx
        .process("download", "sh")
        .args([
            "-c",
            "printf 'fetching\\r 10%%\\r 55%%\\r100%%\\r'; exec sleep 30",
        ])
        .ready_log("100%")
        .start()
        .await
        .unwrap();
    assert_eq!(progress.log_tail(4), "fetching\n 10%\n 55%\n100%");
    let log = std::fs::read(progress.log_path()).unwrap();
    assert!(!log.contains(&b'\r'), "{log:?}");
}

#[dynamo_test(timeout = "60s")]
async fn the_tail_after_an_exit_holds_the_last_line_written_right_before_it(ctx: &TestContext) {
    // The grandchild keeps the pipes open, so the end of the output never
    // comes: the exit must still wait for what the child wrote.
    for round in 0..30 {
        let child = ctx
            .process("last-words", "sh")
            .args([
                "-c",
                &format!("sleep 1000 & printf 'line\\nlast words {round}'; exit 3"),
            ])
            .start()
            .await
            .unwrap();
        assert_eq!(child.wait().await.code(), Some(3));
        assert_eq!(child.log_tail(2), format!("line\nlast words {round}"));
        child.kill();
    }
}

/// etcd on ports of its own, with the fast single-node flags the harness
/// uses for its private instances.
fn etcd_args(client: &Port, peer: &Port, data: &Path) -> Vec<String> {
    let client = format!("http://127.0.0.1:{client}");
    let peer = format!("http://127.0.0.1:{peer}");
    [
        "--name",
        "logs",
        "--data-dir",
        &data.display().to_string(),
        "--listen-client-urls",
        &client,
        "--advertise-client-urls",
        &client,
        "--listen-peer-urls",
        &peer,
        "--initial-advertise-peer-urls",
        &peer,
        "--initial-cluster",
        &format!("logs={peer}"),
        "--heartbeat-interval=10",
        "--election-timeout=100",
    ]
    .map(String::from)
    .to_vec()
}

const ETCD: &str = "/usr/bin/etcd";

#[dynamo_test(timeout = "60s")]
async fn ready_log_waits_for_etcd_to_serve_and_wait_for_log_for_later_lines(ctx: &TestContext) {
    let (client, peer) = (find_free_port().unwrap(), find_free_port().unwrap());
    let data = ctx.output_dir().join("etcd-data");
    let etcd = ctx
        .process("etcd", ETCD)
        .args(etcd_args(&client, &peer, &data))
        .ready_log("ready to serve client requests")
        .start()
        .await
        .unwrap();
    assert!(
        std::fs::read_to_string(etcd.log_path())
            .unwrap()
            .contains("ready to serve client requests"),
        "start returned before the line"
    );
    // It said so: it serves.
    let url = format!("http://127.0.0.1:{client}");
    health::etcd(&url)
        .wait(Duration::from_secs(10))
        .await
        .unwrap();

    // The regex form, on a line of this start (lines before the call count).
    let serving = LogPattern::regex(&format!(
        r"serving insecure client requests on 127\.0\.0\.1:{client}\b"
    ))
    .unwrap();
    let line = etcd
        .wait_for_log(serving, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(line.contains(&format!("127.0.0.1:{client}")), "{line}");

    // A line written after the wait began: the shutdown the stop causes.
    let shutdown = etcd.wait_for_log("shutting down", Duration::from_secs(20));
    let stop = async {
        tokio::task::yield_now().await;
        etcd.stop().await
    };
    let (line, _status) = tokio::join!(shutdown, stop);
    let line = line.unwrap();
    assert!(line.contains("received terminated signal"), "{line}");
    assert!(etcd.exit_status().is_some());
}

#[dynamo_test(timeout = "60s")]
async fn ready_log_combines_with_an_http_probe(ctx: &TestContext) {
    let (client, peer) = (find_free_port().unwrap(), find_free_port().unwrap());
    let data = ctx.output_dir().join("etcd-data");
    let url = format!("http://127.0.0.1:{client}");
    let etcd = ctx
        .process("etcd", ETCD)
        .args(etcd_args(&client, &peer, &data))
        .ready(health::etcd(&url))
        .ready_log(LogPattern::regex(r"embed: ready to serve client requests$").unwrap())
        .ready_log("became leader at term")
        .start()
        .await
        .unwrap();
    let log = std::fs::read_to_string(etcd.log_path()).unwrap();
    assert!(log.contains("ready to serve client requests"), "{log}");
    assert!(log.contains("became leader at term"), "{log}");
    assert!(etcd.exit_status().is_none());
}

#[dynamo_test(timeout = "30s")]
async fn a_failed_log_wait_names_the_pattern_and_shows_the_tail(ctx: &TestContext) {
    let chatty = ctx
        .process("chatty", "sh")
        .args(["-c", "echo starting; echo almost there; exec sleep 30"])
        .ready_log("almost there")
        .start()
        .await
        .unwrap();
    let err = chatty
        .wait_for_log("never printed", Duration::from_millis(300))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "timed out waiting for a log line containing \"never printed\" of process `chatty`"
        ),
        "{err}"
    );
    assert!(err.contains("(limit 300ms)"), "{err}");
    assert!(err.contains("  | almost there"), "{err}");

    // An exit without the line ends the wait at once, with the exit status.
    let err = ctx
        .process("quitter", "sh")
        .args(["-c", "echo 'fatal: no config' >&2; exit 4"])
        .ready_log(LogPattern::regex(r"^listening on \d+$").unwrap())
        .startup_timeout(Duration::from_secs(30))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("did not become ready"), "{err}");
    assert!(
        err.contains(r"a log line matching /^listening on \d+$/ of process `quitter`"),
        "{err}"
    );
    assert!(
        err.contains("the process exited (exit status: 4) without it"),
        "{err}"
    );
    assert!(err.contains("  | fatal: no config"), "{err}");
}

/// The test process's peak resident memory, from a reset on (VmHWM, reset
/// through `/proc/self/clear_refs`, Linux 4.0+).
struct PeakMemory {
    base_kib: Option<u64>,
}

impl PeakMemory {
    fn start() -> PeakMemory {
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        PeakMemory {
            base_kib: reset.then(vm_hwm_kib).flatten(),
        }
    }

    /// How much the peak grew since the start; `None` (with a note) where
    /// it cannot be told.
    fn grown_kib(&self) -> Option<u64> {
        let grown = self
            .base_kib
            .and_then(|base| Some(vm_hwm_kib()?.saturating_sub(base)));
        if grown.is_none() {
            eprintln!("skipped the memory check: no resettable VmHWM here");
        }
        grown
    }
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
