"""The exceptions of dynamo_test (the native module raises these)."""

from __future__ import annotations


class DynamoTestError(Exception):
    """Something the harness could not do; the message says what and why."""


class EnvVarError(DynamoTestError, ValueError):
    """An environment variable holds a value the harness cannot use; the
    message names the variable, its value and what was expected."""


class PortError(DynamoTestError):
    """No port could be reserved (the range is exhausted, say)."""


class ServiceError(DynamoTestError):
    """etcd or NATS could not be obtained (not installed, not healthy)."""


class NotReadyError(DynamoTestError, TimeoutError):
    """A readiness wait ended without readiness: the message tells the
    story of the wait (what was probed, for how long, what it answered)."""
