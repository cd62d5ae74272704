//! The story of a wait, compressed: `connection refused x37 -> HTTP 503 {...} x2`.

/// Outcomes of successive attempts, with consecutive repeats merged.
#[derive(Debug, Default, Clone)]
pub(crate) struct History {
    runs: Vec<(String, u32)>,
}

/// Runs shown at the start and at the end of a long history.
const HEAD_RUNS: usize = 3;
const TAIL_RUNS: usize = 6;

impl History {
    pub(crate) fn push(&mut self, outcome: &str) {
        match self.runs.last_mut() {
            Some((last, n)) if last == outcome => *n += 1,
            _ => self.runs.push((outcome.to_string(), 1)),
        }
    }

    fn run_text((outcome, n): &(String, u32)) -> String {
        if *n == 1 {
            outcome.clone()
        } else {
            format!("{outcome} x{n}")
        }
    }
}

impl std::fmt::Display for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.runs.is_empty() {
            return f.write_str("no attempt");
        }
        let shown: Vec<String> = if self.runs.len() <= HEAD_RUNS + TAIL_RUNS {
            self.runs.iter().map(Self::run_text).collect()
        } else {
            let hidden = self.runs.len() - HEAD_RUNS - TAIL_RUNS;
            let head = self.runs[..HEAD_RUNS].iter().map(Self::run_text);
            let tail = self.runs[self.runs.len() - TAIL_RUNS..]
                .iter()
                .map(Self::run_text);
            head.chain(std::iter::once(format!("({hidden} more)")))
                .chain(tail)
                .collect()
        };
        f.write_str(&shown.join(" -> "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_merge_and_long_stories_are_cut_in_the_middle() {
        let mut h = History::default();
        for _ in 0..37 {
            h.push("connection refused");
        }
        h.push("HTTP 503 {\"health\":\"false\"}");
        h.push("HTTP 503 {\"health\":\"false\"}");
        assert_eq!(
            h.to_string(),
            "connection refused x37 -> HTTP 503 {\"health\":\"false\"} x2"
        );

        let mut h = History::default();
        for i in 0..20 {
            h.push(&format!("s{i}"));
        }
        assert_eq!(
            h.to_string(),
            "s0 -> s1 -> s2 -> (11 more) -> s14 -> s15 -> s16 -> s17 -> s18 -> s19"
        );
    }
}
