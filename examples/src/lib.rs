//! Examples and benchmarks for dynamo-test.
