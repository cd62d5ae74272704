"""find_free_port, find_free_port_from and the reservation object."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
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
    # The kernel closed its sockets with the process: free at once (unless
    # another holder took the number since, which the listing would name).
    holders = [r["pid"] for r in dynamo_test.reservations() if r["port"] == port]
    assert child.pid not in holders
    with find_free_port_from(port) as again:
        taken = [r["pid"] for r in dynamo_test.reservations() if r["port"] == port]
        assert again.port == port or taken != [os.getpid()], (again, taken)


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


@pytest.mark.parametrize("base", [0, -1, 70000])
def test_a_base_that_is_not_a_port_is_a_value_error(base: int) -> None:
    with pytest.raises(ValueError, match=f"base must be a port \\(1-65535\\), got {base}"):
        find_free_port_from(base)


def test_a_good_port_range_override_is_used() -> None:
    child = python_child(
        "import dynamo_test\n"
        "assert dynamo_test.dynamic_range() == (30100, 30199)\n"
        "ports = [dynamo_test.find_free_port() for _ in range(5)]\n"
        "print(' '.join(str(p.port) for p in ports))\n",
        env={**os.environ, "DYNAMO_TEST_PORT_RANGE": "30100-30199"},
    )
    out, _ = child.communicate(timeout=60)
    ports = [int(p) for p in out.split()]
    assert len(set(ports)) == 5 and all(30100 <= p <= 30199 for p in ports), out


def test_a_forked_child_reserves_and_is_told_it_cannot_wait() -> None:
    # The parent used the runtime before the fork (a wait ran): the child
    # has none of its threads, so a wait there fails at once, saying why,
    # instead of hanging; reservations need no thread and work.
    child = python_child(
        "import os, dynamo_test\n"
        "closed = dynamo_test.find_free_port()\n"
        "url = f'http://127.0.0.1:{closed.port}/'\n"
        "try:\n"
        "    dynamo_test.wait_http(url, 0.2)\n"
        "except dynamo_test.NotReadyError:\n"
        "    pass\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    with dynamo_test.find_free_port() as mine:\n"
        "        fresh = mine.port != closed.port\n"
        "    try:\n"
        "        dynamo_test.wait_http(url, 0.2)\n"
        "        said = 'waited'\n"
        "    except dynamo_test.DynamoTestError as e:\n"
        "        said = str(e)\n"
        "    print('fresh' if fresh else 'reused', said, flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    out, _ = child.communicate(timeout=120)
    assert out.startswith("fresh this process was forked from process"), out
    assert '"spawn"' in out


def test_ctrl_c_interrupts_a_wait() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import dynamo_test\n"
            "closed = dynamo_test.find_free_port()\n"
            "print('waiting', flush=True)\n"
            "dynamo_test.wait_http(f'http://127.0.0.1:{closed.port}/', 600)\n",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "waiting\n"
    child.send_signal(signal.SIGINT)
    # Raised at the wait's next look for signals, not after its 600 s.
    _, err = child.communicate(timeout=120)
    assert "KeyboardInterrupt" in err, err
