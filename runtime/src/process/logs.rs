//! A child's log file: its stdout and stderr, line by line (cut by
//! [`LineSplitter`]), and a counter of lines written that waits watch (a
//! new line is a good moment for another attempt, or the awaited line).
//!
//! Each pipe has a [`Forwarder`]: a thread copies it into the log as data
//! comes, and [`Forwarder::drain`], called when the child has exited,
//! copies what is still in the pipe before the exit is published, so a
//! failure report's tail holds the child's last lines. Neither blocks on an
//! empty pipe (a grandchild may keep it open for ever), and memory stays
//! bounded whatever the child writes: one read buffer, one unfinished line
//! of at most [`MAX_LINE`](super::line_splitter::MAX_LINE) bytes.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::line_splitter::LineSplitter;
use crate::sys::pipe;
use crate::sys::sync::lock;
use tokio::sync::watch;

/// Bytes read from a pipe at a time.
const CHUNK: usize = 64 * 1024;

/// The most a drain copies: more than a pipe holds (64 KiB by default,
/// 1 MiB at most unprivileged), so all that the child wrote; a grandchild
/// that keeps writing cannot hold the exit back for long.
const DRAIN_LIMIT: usize = 4 << 20;

/// Opens (appending) the log at `path`.
pub(crate) fn open(path: &Path) -> std::io::Result<Arc<Mutex<File>>> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    Ok(Arc::new(Mutex::new(file)))
}

/// Writes one harness line (e.g. a restart marker) into the log at `path`
/// (opened for the line: a finished process keeps no log open).
pub(crate) fn note(path: &Path, line: &str) {
    if let Ok(mut file) = OpenOptions::new().append(true).open(path) {
        // One write: an append of one write never interleaves with the
        // child's lines, which the forwarder writes meanwhile.
        let _ = file.write_all(format!("[dynamo-test] {line}\n").as_bytes());
    }
}

/// Copies one pipe of a child into its log.
pub(crate) struct Forwarder {
    pipe: File,
    /// Reads and writes happen under this lock, so the thread and a drain
    /// never split a read's lines between them out of order.
    copy: Mutex<Copying>,
}

/// The state of the copying: where lines go, and the unfinished one.
struct Copying {
    log: Arc<Mutex<File>>,
    lines: watch::Sender<u64>,
    splitter: LineSplitter,
    buffer: Vec<u8>,
    out: Vec<u8>,
    ended: bool,
}

/// What one read found.
enum Got {
    Bytes(usize),
    Empty,
    Ended,
}

/// Starts copying `pipe` into `log` on a thread of its own, bumping `lines`
/// by the lines written. The thread ends when every writer has closed the
/// pipe. The returned forwarder drains the pipe on demand (at the exit).
pub(crate) fn forward(
    pipe: impl Into<OwnedFd>,
    log: Arc<Mutex<File>>,
    lines: watch::Sender<u64>,
) -> Arc<Forwarder> {
    let forwarder = Arc::new(Forwarder {
        pipe: File::from(pipe.into()),
        copy: Mutex::new(Copying {
            log,
            lines,
            splitter: LineSplitter::default(),
            buffer: vec![0; CHUNK],
            out: Vec::new(),
            ended: false,
        }),
    });
    let thread = forwarder.clone();
    // Without the thread the child may block on a full pipe; the drain at
    // its exit still copies what the pipe holds.
    let _ = std::thread::Builder::new()
        .name("dynamo-test-log".into())
        .spawn(move || thread.run());
    forwarder
}

impl Forwarder {
    fn run(&self) {
        loop {
            if pipe::wait_readable(&self.pipe).is_err() {
                return;
            }
            let mut copy = lock(&self.copy);
            if matches!(copy.read_once(&self.pipe), Got::Ended) {
                return;
            }
        }
    }

    /// Copies what the pipe holds now (at most [`DRAIN_LIMIT`] bytes) and
    /// ends the unfinished line: called once the child has exited, so that
    /// its last output is in the log before anyone reads the log's tail.
    pub(crate) fn drain(&self) {
        let mut copy = lock(&self.copy);
        let mut drained = 0;
        while drained < DRAIN_LIMIT {
            match copy.read_once(&self.pipe) {
                Got::Bytes(n) => drained += n,
                Got::Empty | Got::Ended => break,
            }
        }
        copy.end_partial_line();
    }
}

impl Copying {
    /// One read, if it returns at once, and the lines it finishes.
    fn read_once(&mut self, pipe: &File) -> Got {
        if self.ended {
            return Got::Ended;
        }
        if !pipe::readable_now(pipe) {
            return Got::Empty;
        }
        let read = loop {
            match (&*pipe).read(&mut self.buffer) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match read {
            Ok(0) | Err(_) => {
                self.ended = true;
                self.end_partial_line();
                Got::Ended
            }
            Ok(n) => {
                let lines = self.splitter.feed(&self.buffer[..n], &mut self.out);
                self.write(lines);
                Got::Bytes(n)
            }
        }
    }

    fn end_partial_line(&mut self) {
        let lines = self.splitter.flush(&mut self.out);
        self.write(lines);
    }

    /// Writes the finished lines in `out` (one write for all of a read's).
    fn write(&mut self, lines: u64) {
        if lines == 0 {
            return;
        }
        {
            let mut file = lock(&self.log);
            let _ = file.write_all(&self.out);
        }
        self.out.clear();
        self.lines.send_modify(|n| *n += lines);
    }
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
    fn a_drain_copies_what_the_pipe_holds_while_a_writer_keeps_it_open() {
        let path = std::env::temp_dir().join(format!("dt-drain-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let log = open(&path).unwrap();
        let (lines, _) = watch::channel(0);
        let (reader, mut writer) = std::io::pipe().unwrap();
        let forwarder = forward(reader, log, lines.clone());
        // Many times, so that the thread is sometimes before, sometimes
        // amid, sometimes after its read: the drain copies the rest, and
        // ends the line that has no end yet.
        for i in 0..200 {
            writer
                .write_all(format!("line {i}\nlast words {i}").as_bytes())
                .unwrap();
            forwarder.drain();
            let tail = tail(&path, 2);
            assert_eq!(tail, format!("line {i}\nlast words {i}"));
        }
        assert_eq!(*lines.borrow(), 400);
        // The writer stays open (a grandchild holding the pipe): the drain
        // did not wait for the end.
        drop(writer);
        std::fs::remove_file(&path).unwrap();
    }

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
