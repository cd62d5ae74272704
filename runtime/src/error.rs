//! The harness's error type, [`Error`], and the errors of its parts that
//! it wraps (a readiness wait's is [`health::WaitError`](crate::health::WaitError),
//! a process's [`process::ProcessError`](crate::process::ProcessError)).
//!
//! Each part returns its own error; the conversions into [`Error`] live
//! here, so that no part depends on the whole.

pub use crate::env::EnvError;
use crate::health::WaitError;
pub use crate::ports::{Exhausted, PortError};
use crate::process::ProcessError;
pub use crate::state_dir::StateDirError;

/// Everything that can go wrong while the harness sets up or tears down a test.
///
/// Each message says what was expected, what was seen and what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A port could not be reserved.
    #[error(transparent)]
    Port(#[from] PortError),
    /// An env var holds a value the harness cannot use.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The state directory is unusable.
    #[error(transparent)]
    StateDir(#[from] StateDirError),
    /// A readiness wait failed.
    #[error(transparent)]
    Wait(Box<WaitError>),
    /// A child process could not be started or did not become ready.
    #[error(transparent)]
    Process(Box<ProcessError>),
    /// A service (etcd, NATS) could not be found, started or reached.
    #[error("{0}")]
    Service(String),
    /// A Dynamo stack could not be started, did not become routable, or
    /// answered a request with an error (see the `dynamo` module).
    #[error("{0}")]
    Dynamo(String),
    /// A test parameter could not be injected.
    #[error("cannot inject parameter `{param}`: {source}")]
    Inject {
        /// The parameter's name.
        param: String,
        /// Why.
        source: Box<Error>,
    },
    /// A user fixture failed; see [`Error::fixture`].
    #[error("{context}: {source}")]
    Fixture {
        /// What was being done.
        context: String,
        /// The fixture's own error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps the error of a user fixture, with a line of context.
    pub fn fixture(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Fixture {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Wraps an I/O error, with a line of context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<WaitError> for Error {
    fn from(e: WaitError) -> Self {
        Error::Wait(Box::new(e))
    }
}

impl From<crate::process::LogPatternError> for Error {
    fn from(e: crate::process::LogPatternError) -> Self {
        Error::Process(Box::new(ProcessError::io(
            "compiling a log pattern",
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
        )))
    }
}

impl From<ProcessError> for Error {
    fn from(e: ProcessError) -> Self {
        Error::Process(Box::new(e))
    }
}
