//! A child's log file: its stdout and stderr, line by line, and a counter
//! of lines written that a readiness wait watches (a new line is a good
//! moment for another attempt).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::sys::sync::lock;
use tokio::sync::watch;

/// Opens (appending) the log at `path`.
pub(crate) fn open(path: &Path) -> std::io::Result<Arc<Mutex<File>>> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    Ok(Arc::new(Mutex::new(file)))
}

/// Writes one harness line (e.g. a restart marker) into the log.
pub(crate) fn note(log: &Mutex<File>, line: &str) {
    let mut file = lock(log);
    let _ = writeln!(file, "[dynamo-test] {line}");
}

/// Copies `pipe` into `log` line by line on a thread of its own, bumping
/// `lines` after each line. Ends when every writer closes the pipe; `done`
/// is dropped then, so the reaper can wait for the last lines.
pub(crate) fn forward(
    pipe: impl Read + Send + 'static,
    log: Arc<Mutex<File>>,
    lines: watch::Sender<u64>,
    done: std::sync::mpsc::Sender<()>,
) {
    let _ = std::thread::Builder::new()
        .name("dynamo-test-log".into())
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                {
                    let mut file = lock(&log);
                    let _ = file.write_all(&line);
                    if !line.ends_with(b"\n") {
                        let _ = file.write_all(b"\n");
                    }
                }
                lines.send_modify(|n| *n += 1);
                line.clear();
            }
            drop(done);
        });
}

/// The last `n` lines of the file at `path` (reads at most its last 64 KiB).
pub fn tail(path: &Path, n: usize) -> String {
    match File::open(path) {
        Ok(file) => tail_of(file, n),
        Err(_) => String::new(),
    }
}

/// The last `n` lines of `file` (reads at most its last 64 KiB).
pub(crate) fn tail_of(mut file: File, n: usize) -> String {
    const WINDOW: u64 = 64 * 1024;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > WINDOW {
        let _ = file.seek(SeekFrom::Start(len - WINDOW));
    }
    let mut bytes = Vec::new();
    // At most the window, even from a file that grows while we read.
    let _ = file.take(WINDOW).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_the_last_lines() {
        let path = std::env::temp_dir().join(format!("dt-tail-{}", std::process::id()));
        std::fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail(&path, 2), "c\nd");
        assert_eq!(tail(&path, 10), "a\nb\nc\nd");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(tail(&path, 3), "");
    }
}
