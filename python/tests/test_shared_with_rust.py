"""A Rust test binary and a pytest run on one machine share one etcd (and one
NATS): started by whichever needs it first, stopped a grace after the last
of them ends, whatever the language."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dynamo_test
from dynamo_test import find_free_port

from conftest import cargo_bin, env_without

INNER = """
import sys

def test_hold({kind}):
    print("SOURCE", {kind}.source, {kind}.url, flush=True)
    sys.stdin.readline()
"""

# Each service's plan variables (its two fixed ports) and client URL scheme.
PLAN = {
    "etcd": ("DYNAMO_TEST_ETCD_CLIENT_PORT", "DYNAMO_TEST_ETCD_PEER_PORT", "http"),
    "nats": ("DYNAMO_TEST_NATS_CLIENT_PORT", "DYNAMO_TEST_NATS_HTTP_PORT", "nats"),
}


def until(what: str, check, limit: float = 60.0):
    """Polls `check` every 20 ms until it returns a true value (which is
    returned); fails after `limit` s, saying what was awaited."""
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {limit} s waiting for {what}")
        time.sleep(0.02)


def record(kind: str, port: int) -> dict[str, object] | None:
    """The keeper's record of the shared `kind` on `port`, if one runs."""
    return next(
        (r for r in dynamo_test.shared_services() if r["name"] == kind and r["port"] == port),
        None,
    )


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Side:
    """One user of the shared etcd: a child process that reports where its
    etcd came from, then holds it until its stdin closes."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd
        )

    def report(self) -> tuple[str, str]:
        """(source, url) as the side printed them."""
        assert self.process.stdout is not None
        seen = []
        for line in self.process.stdout:
            seen.append(line)
            found = re.search(r"source=(\w+) url=(\S+)|SOURCE (\S+) (\S+)", line)
            if found:
                groups = [g for g in found.groups() if g]
                return groups[0], groups[1]
        pytest.fail(f"{self.name} ended without a report: {''.join(seen)}")

    def end(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        out = self.process.stdout.read() if self.process.stdout else ""
        code = self.process.wait(timeout=120)
        assert code == 0, f"{self.name} failed ({code}): {out}"
        return code


@pytest.mark.parametrize("kind", ["etcd", "nats"])
@pytest.mark.parametrize("starter", ["rust", "python"])
def test_one_instance_for_both_languages_stopped_after_the_last(
    kind: str, starter: str, tmp_path: Path
) -> None:
    need_service = cargo_bin("need_service", "DYNAMO_TEST_NEED_SERVICE", "dynamo-test-suite")
    (tmp_path / "test_inner.py").write_text(INNER.format(kind=kind))
    client_var, second_var, scheme = PLAN[kind]
    # A plan of their own (two reserved numbers, held by this test): nobody
    # else uses this instance, so when it stops is theirs to decide.
    with find_free_port() as client, find_free_port() as second:
        env = env_without(
            "ETCD_ENDPOINTS",
            "NATS_SERVER",
            "PYTEST_ADDOPTS",
            **{client_var: str(client.port), second_var: str(second.port)},
            DYNAMO_TEST_SERVICE_GRACE_MS="500",
        )
        rust_argv = [need_service, kind, "shared", "hold"]
        python_argv = [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider"]
        sides = {
            "rust": lambda: Side("the Rust test", rust_argv, env, tmp_path),
            "python": lambda: Side("the pytest run", python_argv, env, tmp_path),
        }
        first = sides[starter]()
        first_source, first_url = first.report()
        second_side = sides["python" if starter == "rust" else "rust"]()
        second_source, second_url = second_side.report()

        url = f"{scheme}://127.0.0.1:{client.port}"
        assert first_url == second_url == url
        # Both joined the one keeper that the first one's start made.
        assert first_source in ("SharedStarted", "shared-started")
        assert second_source in ("SharedStarted", "shared-started")
        both = until("both users on the keeper", lambda: users(kind, client.port) == 2)
        assert both
        service_pid = record(kind, client.port)["service_pid"]  # type: ignore[index]

        # The starter leaves first: the other still holds the instance.
        first.end()
        until("one user left", lambda: users(kind, client.port) == 1)
        assert record(kind, client.port)["service_pid"] == service_pid  # type: ignore[index]
        wait = dynamo_test.wait_etcd if kind == "etcd" else dynamo_test.wait_nats
        assert wait(url, 10) >= 0

        # The last one leaves: the keeper stops it a grace later.
        second_side.end()
        until(
            f"the {kind} to stop",
            lambda: record(kind, client.port) is None and not listening(client.port),
        )


def users(kind: str, port: int) -> int | None:
    """How many processes the keeper counts as users now."""
    found = record(kind, port)
    return None if found is None else int(found["users"])  # type: ignore[call-overload]
