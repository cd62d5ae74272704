//! Helpers shared by the harness's own integration tests (in `tests/tests/`).
