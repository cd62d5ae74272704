"""find_free_port, find_free_port_from and the reservation object."""

from __future__ import annotations

import gc
import os
import signal
import socket
import threading

import pytest

import dynamo_test
from dynamo_test import Reservation, find_free_port, find_free_port_from

from conftest import python_child


def held_by_me(port: int) -> bool:
    """Whether the live reservations list `port` as held by this process."""
    return any(r["port"] == port and r["pid"] == os.getpid() for r in dynamo_test.reservations())


def test_a_reservation_is_a_port_in_the_dynamic_range() -> None:
    r = find_free_port()
    assert isinstance(r, Reservation)
    assert 20000 <= r.port <= 32767
    assert int(r) == r.port
    assert r.held_now
    assert held_by_me(r.port)
    # Bindable: the reservation does not occupy the socket.
    with socket.socket() as s:
        s.bind(("127.0.0.1", r))
    r.release()
    assert not r.held_now
    assert not held_by_me(r.port)
    r.release()  # idempotent


def test_the_label_names_the_running_test() -> None:
    with find_free_port() as r:
        assert "test_the_label_names_the_running_test" in r.label
        assert "test_the_label_names_the_running_test" in repr(r)
    with find_free_port(label="my label") as r:
        assert r.label == "my label"


def test_a_with_block_releases_it() -> None:
    with find_free_port() as r:
        port = r.port
        assert held_by_me(port)
    assert not r.held_now
    assert not held_by_me(port)


def test_garbage_collection_releases_it() -> None:
    r = find_free_port()
    port = r.port
    del r
    gc.collect()
    assert not held_by_me(port)


def test_a_held_port_is_never_granted_again() -> None:
    held = [find_free_port() for _ in range(20)]
    numbers = {r.port for r in held}
    assert len(numbers) == 20
    for r in held:
        # The first free port at or above a held one is another one.
        with find_free_port_from(r.port) as again:
            assert again.port != r.port
            assert again.port not in numbers


def test_threads_never_share_a_port() -> None:
    grants: list[list[Reservation]] = [[] for _ in range(16)]

    def take(i: int) -> None:
        grants[i] = [find_free_port() for _ in range(25)]

    threads = [threading.Thread(target=take, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = [r.port for g in grants for r in g]
    assert len(numbers) == 16 * 25
    assert len(set(numbers)) == len(numbers)


def test_find_free_port_from_skips_the_plans_fixed_ports() -> None:
    with find_free_port_from(2379) as r:
        assert r.port >= 2379
        assert r.port not in (2379, 2380, 4222, 8222)


def test_the_death_of_the_holder_releases_it() -> None:
    child = python_child(
        "import sys, dynamo_test\n"
        "r = dynamo_test.find_free_port(label='doomed child')\n"
        "print(r.port, flush=True)\n"
        "sys.stdin.readline()\n"
    )
    assert child.stdout is not None
    port = int(child.stdout.readline())
    mine = [r for r in dynamo_test.reservations() if r["port"] == port]
    assert mine and mine[0]["pid"] == child.pid and mine[0]["label"] == "doomed child"
    with find_free_port_from(port) as other:
        assert other.port != port
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    # The kernel closed its sockets with the process: free at once.
    assert not any(r["port"] == port for r in dynamo_test.reservations())
    with find_free_port_from(port) as again:
        assert again.port == port


def test_a_bad_port_range_is_a_value_error_naming_the_variable() -> None:
    child = python_child(
        "import dynamo_test\n"
        "try:\n"
        "    dynamo_test.find_free_port()\n"
        "except ValueError as e:\n"
        "    print(type(e).__name__, e)\n",
        env={**os.environ, "DYNAMO_TEST_PORT_RANGE": "9-x"},
    )
    out, _ = child.communicate(timeout=60)
    assert out.startswith("EnvVarError "), out
    assert "DYNAMO_TEST_PORT_RANGE" in out and '"9-x"' in out
