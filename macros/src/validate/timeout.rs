//! `timeout = "30s"`: the limit for setup and body.

use std::time::Duration;

use syn::Meta;

use super::value::{self, Takes};

pub fn build(option: &Meta) -> syn::Result<Duration> {
    let takes = Takes {
        what: "a string with a unit (ms, s, m, h)",
        example: "timeout = \"30s\"",
    };
    let lit = value::string(option, &takes)?;
    duration(&lit.value()).map_err(|why| {
        syn::Error::new(
            lit.span(),
            format!(
                "bad timeout {:?}: {why}; write e.g. `timeout = \"30s\"`, `\"500ms\"` or `\"2m\"`",
                lit.value()
            ),
        )
    })
}

/// `"500ms"`, `"30s"`, `"2m"`, `"1h"`; the error says why not.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.chars().take_while(|c| c.is_ascii_digit()).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err("it must start with a number".into());
    }
    let number: u64 = number
        .parse()
        .map_err(|_| "the number is too large".to_string())?;
    let per_unit = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => return Err("it needs a unit (ms, s, m or h)".into()),
        other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
    };
    match number.checked_mul(per_unit) {
        Some(0) => Err("it must be greater than zero".into()),
        Some(ms) => Ok(Duration::from_millis(ms)),
        None => Err("it is too large".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(duration("30").unwrap_err().contains("unit"));
        assert!(duration("0s").unwrap_err().contains("greater than zero"));
        assert!(duration("1d").unwrap_err().contains("unknown unit"));
        assert!(duration("s").unwrap_err().contains("number"));
    }
}
