//! Waiting for a line in a child's log, the way testcontainers'
//! `WaitFor::message_on_stdout` does: [`LogPattern`] says which line (a
//! substring or a regex), and a wait reads the log from where the child's
//! current incarnation began, then each new line as the forwarder writes
//! it, woken by the log's line counter (no polling delay).
//!
//! A wait reads each byte of the log once and keeps at most one unfinished
//! line: the log holds whole lines of bounded length (`line_splitter`).

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::line_splitter::MAX_LINE;
use crate::health::{deadline_after, WaitError};

/// Which log line to wait for: a substring (from `&str` or `String`) or a
/// regex ([`LogPattern::regex`], the syntax of the `regex-lite` crate,
/// matched anywhere in the line unless anchored with `^`/`$`).
///
/// ```
/// use dynamo_test::process::LogPattern;
///
/// let served = LogPattern::from("ready to serve client requests");
/// assert!(served.matches("{\"msg\":\"ready to serve client requests\"}"));
/// let port = LogPattern::regex(r"listening on 127\.0\.0\.1:\d+$").unwrap();
/// assert!(port.matches("INFO listening on 127.0.0.1:4222"));
/// assert!(LogPattern::regex("(unclosed").is_err());
/// ```
#[derive(Clone, Debug)]
pub struct LogPattern {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Contains(String),
    Regex(regex_lite::Regex),
}

/// A [`LogPattern::regex`] that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("invalid log line regex `{pattern}`: {reason}")]
pub struct LogPatternError {
    /// The regex as given.
    pub pattern: String,
    /// Why it does not compile.
    pub reason: String,
}

impl LogPattern {
    /// Lines containing `text`.
    pub fn contains(text: impl Into<String>) -> LogPattern {
        LogPattern {
            kind: Kind::Contains(text.into()),
        }
    }

    /// Lines matching the regex `pattern` (anywhere in the line).
    pub fn regex(pattern: &str) -> Result<LogPattern, LogPatternError> {
        match regex_lite::Regex::new(pattern) {
            Ok(regex) => Ok(LogPattern {
                kind: Kind::Regex(regex),
            }),
            Err(e) => Err(LogPatternError {
                pattern: pattern.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// Whether `line` (without its line end) is one of those lines.
    pub fn matches(&self, line: &str) -> bool {
        match &self.kind {
            Kind::Contains(text) => line.contains(text.as_str()),
            Kind::Regex(regex) => regex.is_match(line),
        }
    }
}

impl From<&str> for LogPattern {
    fn from(text: &str) -> LogPattern {
        LogPattern::contains(text)
    }
}

impl From<String> for LogPattern {
    fn from(text: String) -> LogPattern {
        LogPattern::contains(text)
    }
}

impl std::fmt::Display for LogPattern {
    /// `containing "text"` or `matching /regex/`, for wait stories.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Contains(text) => write!(f, "containing {text:?}"),
            Kind::Regex(regex) => write!(f, "matching /{}/", regex.as_str()),
        }
    }
}

/// Reads a log's lines from an offset on, each once, as it grows.
struct LogCursor {
    file: File,
    buffer: Vec<u8>,
    /// The bytes of `buffer` read from the file but not judged yet.
    unread: std::ops::Range<usize>,
    /// The start of a line whose end is not in the file yet.
    partial: Vec<u8>,
    lines: u64,
}

impl LogCursor {
    fn open(path: &Path, offset: u64) -> std::io::Result<LogCursor> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(LogCursor {
            file,
            buffer: vec![0; 64 * 1024],
            unread: 0..0,
            partial: Vec::new(),
            lines: 0,
        })
    }

    /// The first line finished since the last call that `pattern` matches.
    fn next_match(&mut self, pattern: &LogPattern) -> std::io::Result<Option<String>> {
        loop {
            if self.unread.is_empty() {
                match self.file.read(&mut self.buffer) {
                    Ok(0) => return Ok(None),
                    Ok(n) => self.unread = 0..n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            let bytes = &self.buffer[self.unread.clone()];
            let Some(at) = bytes.iter().position(|&b| b == b'\n') else {
                self.partial.extend_from_slice(bytes);
                self.unread.start = self.unread.end;
                // Log lines are bounded; a longer run (a file written by
                // someone else) is judged in pieces rather than kept.
                if self.partial.len() > 2 * MAX_LINE {
                    if let Some(line) = take_line(&mut self.partial, &mut self.lines, pattern) {
                        return Ok(Some(line));
                    }
                }
                continue;
            };
            self.partial.extend_from_slice(&bytes[..at]);
            self.unread.start += at + 1;
            if let Some(line) = take_line(&mut self.partial, &mut self.lines, pattern) {
                return Ok(Some(line));
            }
        }
    }
}

/// The unfinished line `partial`, now finished: returned if it matches.
fn take_line(partial: &mut Vec<u8>, lines: &mut u64, pattern: &LogPattern) -> Option<String> {
    *lines += 1;
    let line = String::from_utf8_lossy(partial);
    let found = pattern.matches(&line).then(|| line.into_owned());
    partial.clear();
    found
}

/// Where and how to wait: the log, where the incarnation's output begins,
/// its line counter and its exit.
pub(crate) struct LogSource<'a> {
    pub path: &'a Path,
    pub offset: u64,
    pub lines: watch::Receiver<u64>,
    pub exit: watch::Receiver<Option<ExitStatus>>,
}

/// Why a wait ended without the line, with what it read.
pub(crate) struct Missed {
    why: Why,
    elapsed: Duration,
    reads: u32,
    lines: u64,
}

enum Why {
    TimedOut,
    Exited(ExitStatus),
    Unreadable(std::io::Error),
}

/// Waits up to `timeout` for a line matching `pattern` in the log of
/// `source`, from its offset on; returns the line. Fails at once when the
/// process exits without having written it (its exit is published once
/// its output is drained into the log, so the last read sees all of it).
pub(crate) async fn wait_for_line(
    pattern: &LogPattern,
    mut source: LogSource<'_>,
    timeout: Duration,
) -> Result<String, Missed> {
    let started = Instant::now();
    // The real clock: a paused tokio clock must not end the wait at once.
    let deadline = deadline_after(started, timeout);
    let mut reads = 0;
    let missed = |why, reads, lines| Missed {
        why,
        elapsed: started.elapsed(),
        reads,
        lines,
    };
    let mut cursor = match LogCursor::open(source.path, source.offset) {
        Ok(cursor) => cursor,
        Err(e) => return Err(missed(Why::Unreadable(e), 0, 0)),
    };
    loop {
        // Marked seen before reading: a line written after this wakes us.
        source.lines.borrow_and_update();
        let exited = *source.exit.borrow_and_update();
        reads += 1;
        match cursor.next_match(pattern) {
            Ok(Some(line)) => return Ok(line),
            Ok(None) => {}
            Err(e) => return Err(missed(Why::Unreadable(e), reads, cursor.lines)),
        }
        if let Some(status) = exited {
            return Err(missed(Why::Exited(status), reads, cursor.lines));
        }
        tokio::select! {
            () = changed(&mut source.lines) => {}
            () = changed(&mut source.exit) => {}
            () = crate::sys::real_time::sleep(deadline.saturating_duration_since(Instant::now())) => {
                return Err(missed(Why::TimedOut, reads, cursor.lines))
            }
        }
    }
}

/// Resolves on the next change; never, once the sender is gone (a closed
/// channel must not spin the loop).
async fn changed<T>(receiver: &mut watch::Receiver<T>) {
    if receiver.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Missed {
    /// The wait's story, as readiness waits tell it: what was awaited
    /// (`what`, e.g. "a log line containing \"x\" of process `etcd`"), why
    /// it ended, what was read, and `report` (the process's state and tail).
    pub(crate) fn into_error(self, what: String, limit: Duration, report: String) -> WaitError {
        let fatal = match self.why {
            Why::TimedOut => None,
            Why::Exited(status) => Some(format!("the process exited ({status}) without it")),
            Why::Unreadable(e) => Some(format!("cannot read the log: {e}")),
        };
        WaitError {
            probe: what,
            fatal,
            elapsed: self.elapsed,
            limit,
            attempts: self.reads,
            history: format!("{} new lines read, none matched", self.lines),
            last_body: None,
            watched: Some(report),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_log(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("dt-logwait-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_cursor_reads_each_line_once_and_waits_for_unfinished_ones() {
        let path = temp_log("cursor");
        let mut file = File::create(&path).unwrap();
        file.write_all(b"skipped\nfirst ready\nsecond rea").unwrap();
        let ready = LogPattern::from("ready");
        let mut cursor = LogCursor::open(&path, "skipped\n".len() as u64).unwrap();
        assert_eq!(
            cursor.next_match(&ready).unwrap().as_deref(),
            Some("first ready")
        );
        // The unfinished line is not judged yet.
        assert_eq!(cursor.next_match(&ready).unwrap(), None);
        file.write_all(b"dy\nthird\n").unwrap();
        assert_eq!(
            cursor.next_match(&ready).unwrap().as_deref(),
            Some("second ready")
        );
        assert_eq!(cursor.next_match(&ready).unwrap(), None);
        assert_eq!(cursor.lines, 3);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn patterns_describe_themselves() {
        assert_eq!(
            LogPattern::from("a \"b\"").to_string(),
            r#"containing "a \"b\"""#
        );
        assert_eq!(
            LogPattern::regex(r"^\d+$").unwrap().to_string(),
            r"matching /^\d+$/"
        );
        let err = LogPattern::regex("a(").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid log line regex `a(`: "),
            "{err}"
        );
    }

    /// The line wakes the wait (its 60 s limit runs on the real clock, so
    /// a wait that did not wake would time this test out).
    #[tokio::test(start_paused = true)]
    async fn a_wait_wakes_on_the_line_and_fails_at_the_exit_without_it() {
        let began = std::time::Instant::now();
        let path = temp_log("wait");
        let mut file = File::create(&path).unwrap();
        let (lines_tx, lines) = watch::channel(0u64);
        let (exit_tx, exit) = watch::channel(None);
        let source = |lines, exit| LogSource {
            path: &path,
            offset: 0,
            lines,
            exit,
        };
        let up = LogPattern::from("up");
        let waiting = wait_for_line(
            &up,
            source(lines.clone(), exit.clone()),
            Duration::from_secs(60),
        );
        let writer = async {
            tokio::task::yield_now().await;
            file.write_all(b"starting\nup and running\n").unwrap();
            lines_tx.send_modify(|n| *n += 2);
        };
        let (found, ()) = tokio::join!(waiting, writer);
        assert_eq!(found.ok().as_deref(), Some("up and running"));
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "woken by the line"
        );

        use std::os::unix::process::ExitStatusExt;
        exit_tx.send(Some(ExitStatus::from_raw(0))).unwrap();
        let never = LogPattern::from("never");
        let missed = wait_for_line(&never, source(lines, exit), Duration::from_secs(60))
            .await
            .err()
            .unwrap();
        let error = missed.into_error("a line".into(), Duration::from_secs(60), "tail".into());
        let text = error.to_string();
        assert!(
            text.contains("the process exited (exit status: 0) without it"),
            "{text}"
        );
        assert!(
            text.contains("2 new lines read, none matched\ntail"),
            "{text}"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
