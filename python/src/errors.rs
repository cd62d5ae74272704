//! The runtime's errors as Python exceptions, defined in Python
//! (`dynamo_test/_errors.py`) so that they can extend built-in ones: a
//! bad environment variable is a `ValueError`, a readiness wait that
//! failed a `TimeoutError`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

use dynamo_test::error::PortError;
use dynamo_test::Error;

/// An exception of class `name` from `dynamo_test._errors` (a
/// `RuntimeError` should the module be missing).
fn raise(name: &str, message: String) -> PyErr {
    Python::attach(|py| {
        let class = py
            .import("dynamo_test._errors")
            .and_then(|m| m.getattr(name))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match class {
            Ok(class) => PyErr::from_type(class, message),
            Err(_) => PyRuntimeError::new_err(message),
        }
    })
}

/// A failure of the harness itself, not of the test's input.
pub fn harness(message: impl Into<String>) -> PyErr {
    raise("DynamoTestError", message.into())
}

/// The exception for a runtime error.
pub fn from_error(error: Error) -> PyErr {
    let class = match &error {
        Error::Env(_) | Error::Port(PortError::Env(_)) => "EnvVarError",
        Error::Wait(_) => "NotReadyError",
        Error::Port(_) => "PortError",
        Error::Service(_) => "ServiceError",
        _ => "DynamoTestError",
    };
    raise(class, error.to_string())
}

/// The exception for a port error.
pub fn from_port_error(error: PortError) -> PyErr {
    from_error(Error::Port(error))
}
