//! Cutting a child's output into log lines that stay readable and bounded:
//! a line ends at `\n`, `\r\n` or a lone `\r` (a progress bar redrawing
//! itself: each state becomes a line, instead of one line that a terminal
//! would show as its last state and `less` as `^M` soup), and a line with
//! no end (binary output) is cut every [`MAX_LINE`] bytes.

/// The longest line written to a log; longer ones are cut into lines of
/// this length (and a shorter last one).
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// A stream's unfinished line, between reads.
#[derive(Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
    after_cr: AfterCr,
}

/// What the previous byte was, for `\r\n` to count as one line end.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum AfterCr {
    #[default]
    No,
    /// A `\r` that ended a line.
    Ended,
    /// A `\r` at the start of a line (nothing to end): a `\n` after it
    /// still ends an empty line.
    Empty,
}

impl LineSplitter {
    /// Feeds `bytes`; appends each line they finish to `out`, ending in
    /// `\n`. Returns the number of lines.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) -> u64 {
        let mut lines = 0;
        while let Some((&first, rest)) = bytes.split_first() {
            let after_cr = std::mem::take(&mut self.after_cr);
            if first == b'\n' && after_cr != AfterCr::No {
                if after_cr == AfterCr::Empty {
                    lines += self.end_line(out);
                }
                bytes = rest;
                continue;
            }
            let Some(at) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') else {
                lines += self.extend(bytes, out);
                break;
            };
            lines += self.extend(&bytes[..at], out);
            if bytes[at] == b'\n' {
                lines += self.end_line(out);
            } else if self.partial.is_empty() {
                // A redraw starting with `\r` does not make an empty line.
                self.after_cr = AfterCr::Empty;
            } else {
                lines += self.end_line(out);
                self.after_cr = AfterCr::Ended;
            }
            bytes = &bytes[at + 1..];
        }
        lines
    }

    /// Ends the unfinished line, if any (the stream ended, or its writer
    /// exited). Returns the number of lines (0 or 1).
    pub(crate) fn flush(&mut self, out: &mut Vec<u8>) -> u64 {
        self.after_cr = AfterCr::No;
        if self.partial.is_empty() {
            0
        } else {
            self.end_line(out)
        }
    }

    /// Adds `bytes` (no line end among them) to the unfinished line,
    /// cutting it at [`MAX_LINE`].
    fn extend(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) -> u64 {
        let mut lines = 0;
        while self.partial.len() + bytes.len() > MAX_LINE {
            let (head, rest) = bytes.split_at(utf8_cut(bytes, MAX_LINE - self.partial.len()));
            self.partial.extend_from_slice(head);
            lines += self.end_line(out);
            bytes = rest;
        }
        self.partial.extend_from_slice(bytes);
        lines
    }

    fn end_line(&mut self, out: &mut Vec<u8>) -> u64 {
        out.extend_from_slice(&self.partial);
        out.push(b'\n');
        self.partial.clear();
        1
    }
}

/// `at`, moved back (at most 3 bytes) off the middle of a UTF-8 character,
/// so that a cut line shows no broken character; `at` itself for bytes
/// that are not UTF-8 (or when backing off would leave nothing).
fn utf8_cut(bytes: &[u8], at: usize) -> usize {
    let is_continuation = |i: usize| bytes.get(i).is_some_and(|b| b & 0b1100_0000 == 0b1000_0000);
    (at.saturating_sub(3)..=at)
        .rev()
        .find(|&i| !is_continuation(i))
        .filter(|&i| i > 0)
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log `chunks` make, and its line count, flushed at the end.
    fn split(chunks: &[&[u8]]) -> (String, u64) {
        let mut splitter = LineSplitter::default();
        let mut out = Vec::new();
        let mut lines = 0;
        for chunk in chunks {
            lines += splitter.feed(chunk, &mut out);
        }
        lines += splitter.flush(&mut out);
        (String::from_utf8(out).unwrap(), lines)
    }

    #[test]
    fn lines_end_at_newlines_and_the_last_one_at_the_flush() {
        assert_eq!(split(&[b"a\nb", b"c\n\nd"]), ("a\nbc\n\nd\n".into(), 4));
        assert_eq!(split(&[b""]), (String::new(), 0));
    }

    #[test]
    fn redraws_with_carriage_returns_become_lines() {
        let progress: &[u8] = b"\r 10%\r 50%\r100%\ndone\n";
        assert_eq!(split(&[progress]), (" 10%\n 50%\n100%\ndone\n".into(), 4));
    }

    #[test]
    fn crlf_ends_one_line_even_across_reads() {
        assert_eq!(split(&[b"a\r\nb\r", b"\nc"]), ("a\nb\nc\n".into(), 3));
        // An empty CRLF line stays a line.
        assert_eq!(split(&[b"a\n\r", b"\nb\n"]), ("a\n\nb\n".into(), 3));
    }

    #[test]
    fn a_line_without_end_is_cut_at_the_bound() {
        let long = vec![b'x'; 2 * MAX_LINE + 10];
        let mut splitter = LineSplitter::default();
        let mut out = Vec::new();
        // Fed in odd pieces, as reads return them.
        let mut lines = 0;
        for piece in long.chunks(7_000) {
            lines += splitter.feed(piece, &mut out);
        }
        assert_eq!(lines, 2, "two full lines before the end");
        lines += splitter.flush(&mut out);
        let text = String::from_utf8(out).unwrap();
        let lengths: Vec<usize> = text.lines().map(str::len).collect();
        assert_eq!(lengths, [MAX_LINE, MAX_LINE, 10]);
        assert_eq!(lines, 3);
        // A line of exactly the bound is one line.
        let exact = [vec![b'y'; MAX_LINE], b"\n".to_vec()].concat();
        assert_eq!(split(&[&exact]).1, 1);
    }
}
