//! Examples and benchmarks for dynamo-test.

/// A mock OpenAI-compatible model server (health, model list, chat
/// completions) that stands in for the user's application in tests; also
/// runnable as the `mock_model_server` binary.
pub mod mock_server;

/// A minimal NATS client (the text protocol), for tests and benchmarks
/// that send real messages through a real nats-server.
pub mod nats_client;
