//! Examples and benchmarks for dynamo-test.

/// Helpers shared by the benchmark binaries (`port_bench`,
/// `readiness_bench`, `services_bench`): the usage/exit-2 `main`, flag
/// parsing, nearest-rank percentiles, `x.x ms` formatting, a small random
/// number generator and a current-thread runtime.
pub mod bench;

/// A mock OpenAI-compatible model server (health, model list, chat
/// completions) that stands in for the user's application in tests; also
/// runnable as the `mock_model_server` binary.
pub mod mock_server;
