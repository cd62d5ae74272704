//! The one grammar of durations for the harness's tools (the command's
//! `--timeout`, the mock server's delays): humantime's, with the units of
//! the macro's `timeout` option (`ms`, `s`, `m`, `h`), whole milliseconds.
//!
//! `macros/src/validate/timeout.rs` applies the same rule at compile time
//! (a proc-macro crate cannot share code with this one); both keep the same
//! table of accepted and refused texts in their tests.

use std::time::Duration;

/// The units: humantime knows more (`d`, `w`, `us`, `sec`, ...), but a
/// limit in days or microseconds is a slip far more often than a wish.
const UNITS: [&str; 4] = ["ms", "s", "m", "h"];

/// `"500ms"`, `"30s"`, `"1m 30s"`, `"1.5h"`, `"0s"`: a whole number of
/// milliseconds (zero included: callers that refuse it say why); the
/// error says what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    check_units(text)?;
    let duration = humantime::parse_duration(text.trim()).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => "it is too large".to_string(),
        other => format!("it is not a duration ({other})"),
    })?;
    if duration.subsec_nanos() % 1_000_000 != 0 {
        return Err("it must be a whole number of milliseconds".into());
    }
    if u64::try_from(duration.as_millis()).is_err() {
        return Err("it is too large".into());
    }
    Ok(duration)
}

/// Every number has one of [`UNITS`] after it.
fn check_units(text: &str) -> Result<(), String> {
    let mut rest = text.trim();
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("it must start with a number".into());
    }
    while !rest.is_empty() {
        let (number, after) = split_while(rest, |c| c.is_ascii_digit() || c == '.');
        if number.is_empty() {
            return Err(format!("expected a number at `{rest}`"));
        }
        let (unit, after) = split_while(after.trim_start(), char::is_alphabetic);
        match unit {
            "" => return Err("it needs a unit (ms, s, m or h)".into()),
            unit if !UNITS.contains(&unit) => {
                return Err(format!("unknown unit `{unit}` (use ms, s, m or h)"))
            }
            _ => rest = after.trim_start(),
        }
    }
    Ok(())
}

/// `text` split after its longest prefix of characters that match.
fn split_while(text: &str, matches: impl Fn(char) -> bool) -> (&str, &str) {
    let end = text.find(|c: char| !matches(c)).unwrap_or(text.len());
    text.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Result<u128, String> {
        parse_duration(text).map(|d| d.as_millis())
    }

    /// The same table as the macro's (macros/src/validate/timeout.rs),
    /// zero aside: a tool decides whether zero makes sense.
    #[test]
    fn the_macros_grammar() {
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("30s"), Ok(30_000));
        assert_eq!(ms("2m"), Ok(120_000));
        assert_eq!(ms("1h"), Ok(3_600_000));
        assert_eq!(ms("1m 30s"), Ok(90_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms(" 30 s "), Ok(30_000));
        assert_eq!(ms("1.5s"), Ok(1_500));
        assert_eq!(ms("0s"), Ok(0));
        assert_eq!(ms("30"), Err("it needs a unit (ms, s, m or h)".into()));
        assert_eq!(ms("1d"), Err("unknown unit `d` (use ms, s, m or h)".into()));
        assert_eq!(
            ms("5us"),
            Err("unknown unit `us` (use ms, s, m or h)".into())
        );
        assert_eq!(
            ms("30sec"),
            Err("unknown unit `sec` (use ms, s, m or h)".into())
        );
        assert_eq!(ms("s"), Err("it must start with a number".into()));
        assert_eq!(ms(""), Err("it must start with a number".into()));
        assert_eq!(ms("soon"), Err("it must start with a number".into()));
        assert_eq!(ms("1s, 2s"), Err("expected a number at `, 2s`".into()));
        assert_eq!(ms("99999999999999999999h"), Err("it is too large".into()));
        assert_eq!(
            ms("1.5ms"),
            Err("it must be a whole number of milliseconds".into())
        );
        assert!(ms("1..5s").unwrap_err().starts_with("it is not a duration"));
    }
}
