//! Printing: aligned tables, colour on a terminal only, or JSON.

use std::io::IsTerminal;

/// Where and how to print.
pub struct Out {
    /// JSON instead of text.
    pub json: bool,
    color: bool,
}

impl Out {
    /// Colour only if `color`, stdout is a terminal and NO_COLOR is unset or empty.
    pub fn new(json: bool, color: bool) -> Out {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Out {
            json,
            color: color && tty && !no_color,
        }
    }

    /// A section title.
    pub fn heading(&self, title: &str) {
        println!("{}", self.paint(title, "1"));
    }

    /// Green: good.
    pub fn good(&self, text: &str) -> String {
        self.paint(text, "32")
    }
    /// Yellow: a note.
    pub fn warn(&self, text: &str) -> String {
        self.paint(text, "33")
    }
    /// Red: bad.
    pub fn bad(&self, text: &str) -> String {
        self.paint(text, "31")
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Prints rows with columns aligned (widths ignore colour codes).
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) {
        let width = |s: &str| strip_ansi(s).chars().count();
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(width(cell));
                }
            }
        }
        let line = |cells: Vec<String>| {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    format!(
                        "{c}{}",
                        " ".repeat(widths.get(i).copied().unwrap_or(0).saturating_sub(width(c)))
                    )
                })
                .collect();
            println!("  {}", padded.join("  ").trim_end());
        };
        line(header.iter().map(|h| self.paint(h, "2")).collect());
        for row in rows {
            line(row.clone());
        }
    }

    /// Prints a JSON value.
    pub fn json(&self, value: &serde_json::Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

/// `12.3s`, `4m05s`, `2h01m` for an age.
pub fn age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{:.1}s", d.as_secs_f64()),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
