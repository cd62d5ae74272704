//! Reading the harness's environment variables.
//!
//! Every variable the harness reads is parsed here, so that a bad value is
//! always reported the same way: the variable's name, its value, and what
//! was expected.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// An environment variable held a value the harness cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}={value:?} is invalid: expected {expected}")]
pub struct EnvError {
    /// The variable's name, e.g. `DYNAMO_TEST_ETCD_CLIENT_PORT`.
    pub name: String,
    /// The value that was found.
    pub value: String,
    /// What a valid value looks like.
    pub expected: String,
}

impl EnvError {
    /// An error for variable `name` holding `value`, which should have been `expected`.
    pub fn new(name: &str, value: &str, expected: impl Into<String>) -> Self {
        EnvError {
            name: name.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

/// Where variables are read from: the process environment in production, a
/// map in unit tests (tests never change the process environment).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// Reads the process environment.
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The variable's value, if it is set and not empty.
pub(crate) fn var(vars: Lookup, name: &str) -> Result<Option<String>, EnvError> {
    match vars(name) {
        None => Ok(None),
        Some(raw) if raw.is_empty() => Ok(None),
        Some(raw) => raw
            .into_string()
            .map(Some)
            .map_err(|raw: OsString| EnvError::new(name, &raw.to_string_lossy(), "UTF-8 text")),
    }
}

/// Parses the variable with `FromStr`, or returns `None` when it is unset.
pub(crate) fn parse<T: FromStr>(
    vars: Lookup,
    name: &str,
    expected: &str,
) -> Result<Option<T>, EnvError> {
    match var(vars, name)? {
        None => Ok(None),
        Some(value) => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| EnvError::new(name, &value, expected)),
    }
}

/// An absolute path from the variable, or `None` when unset. A relative
/// one is an error: relative to which directory would be a guess (each
/// test binary, IDE and shell has its own current directory).
pub(crate) fn absolute_path(vars: Lookup, name: &str) -> Result<Option<PathBuf>, EnvError> {
    match var(vars, name)? {
        None => Ok(None),
        Some(value) if Path::new(&value).is_absolute() => Ok(Some(PathBuf::from(value))),
        Some(value) => Err(EnvError::new(
            name,
            &value,
            "an absolute path (a relative one would depend on each process's current directory)",
        )),
    }
}

/// A TCP port number from the variable (1..=65535), or `None` when unset.
pub(crate) fn port(vars: Lookup, name: &str) -> Result<Option<u16>, EnvError> {
    match parse::<u16>(vars, name, "a port number (1-65535)")? {
        Some(0) => Err(EnvError::new(name, "0", "a port number (1-65535)")),
        other => Ok(other),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A lookup over fixed pairs, for tests.
    pub(crate) fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn a_path_must_be_absolute() {
        let v = vars(&[
            ("A", "/tmp/x"),
            ("R", "target/out"),
            ("D", "./x"),
            ("E", ""),
        ]);
        assert_eq!(absolute_path(&v, "A"), Ok(Some(PathBuf::from("/tmp/x"))));
        assert_eq!(absolute_path(&v, "E"), Ok(None));
        assert_eq!(absolute_path(&v, "UNSET"), Ok(None));
        for bad in ["R", "D"] {
            let msg = absolute_path(&v, bad).unwrap_err().to_string();
            assert!(
                msg.starts_with(&format!("environment variable {bad}=")),
                "{msg}"
            );
            assert!(msg.contains("expected an absolute path"), "{msg}");
        }
        let msg = absolute_path(&v, "R").unwrap_err().to_string();
        assert!(msg.contains("\"target/out\""), "{msg}");
    }

    #[test]
    fn a_value_that_is_not_utf8_is_an_error_naming_the_variable() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(b"/usr/bin/etcd\xff".to_vec());
        let lookup = move |name: &str| (name == "X_BIN").then(|| bad.clone());
        let err = var(&lookup, "X_BIN").unwrap_err();
        assert_eq!(err.name, "X_BIN");
        assert!(err.to_string().contains("expected UTF-8 text"), "{err}");
    }

    #[test]
    fn port_accepts_numbers_and_rejects_the_rest() {
        let v = vars(&[
            ("A", "8080"),
            ("B", "0"),
            ("C", "70000"),
            ("D", "http"),
            ("E", ""),
        ]);
        assert_eq!(port(&v, "A"), Ok(Some(8080)));
        assert_eq!(port(&v, "E"), Ok(None), "empty means unset");
        assert_eq!(port(&v, "UNSET"), Ok(None));
        for bad in ["B", "C", "D"] {
            let err = port(&v, bad).unwrap_err();
            assert_eq!(err.name, bad);
            assert!(err.to_string().contains(bad), "{err}");
            assert!(err.to_string().contains("port number"), "{err}");
        }
    }
}
