"""Rust and Python reservations are one mechanism: a Rust `port_bench`
worker (16 threads) and 16 Python worker processes allocate at the same
time, each granted port claimed as an O_EXCL marker file in one shared
directory, so a port granted to both languages at once is a double grant
on whichever side marks second. The race itself lives in
python/bench/port_race.py (also the Python benchmark)."""

from __future__ import annotations

import importlib.util
import random
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from conftest import cargo_bin

BENCH = Path(__file__).resolve().parents[1] / "bench" / "port_race.py"


def load_port_race() -> ModuleType:
    """python/bench/port_race.py as a module (bench/ is not a package).
    Registered in sys.modules before it runs: dataclasses look it up."""
    if "port_race" in sys.modules:
        return sys.modules["port_race"]
    spec = importlib.util.spec_from_file_location("port_race", BENCH)
    assert spec is not None and spec.loader is not None, BENCH
    module = importlib.util.module_from_spec(spec)
    sys.modules["port_race"] = module
    spec.loader.exec_module(module)
    return module


port_race = load_port_race()


def port_bench() -> str:
    """`DYNAMO_TEST_PORT_BENCH`, else the workspace's target/debug/port_bench;
    missing, the test fails with the cargo command that builds it."""
    return cargo_bin("port_bench", "DYNAMO_TEST_PORT_BENCH", "dynamo-test-examples")


def describe(race: dict[str, Any]) -> str:
    """Both sides' figures, for an assertion message."""
    keys = ("allocations", "double_grants", "bind_failures", "alloc_errors", "notes", "failures")
    sides = {side: {k: race[side][k] for k in keys} for side in ("rust", "python")}
    return (
        f"{sides}; overlap {race['overlap_ns'] / 1e9:.2f} s, "
        f"{race['python_allocs_during_rust']} python allocations while rust ran"
    )


# Both sides draw from 400 ports (30000-30399) and no cycle serves a
# connection: no port sits in TIME_WAIT, which the bind checks would see,
# so only the reservations keep the two languages apart, and the control
# below collides often enough to count.
NARROW = (30000, 30399)


def test_rust_and_python_never_hold_one_port_at_once(tmp_path: Path) -> None:
    race = port_race.race_with_rust(
        port_bench(), python_workers=16, threads=16, allocs=1600, markers_parent=tmp_path,
        port_range=NARROW,
    )  # fmt: skip
    rust, python = race["rust"], race["python"]
    why = describe(race)
    assert not rust["failures"] and not python["failures"], why
    # Every call granted a port and every marker could be claimed: the
    # check below counted every cycle.
    for side in (rust, python):
        assert side["allocations"] == 1600 and side["alloc_errors"] == 0, why
        assert not any(n.startswith("marker") for n in side["notes"]), why
    # At the same time: the Rust threads were seen alive (from /proc) while
    # most of the Python allocations were made.
    assert race["overlap_ns"] > 0, why
    assert race["python_allocs_during_rust"] >= 800, why
    # And never shared a port.
    assert rust["double_grants"] == 0 and python["double_grants"] == 0, why
    assert rust["bind_failures"] == 0 and python["bind_failures"] == 0, why


def test_the_same_race_without_python_reservations_collides(tmp_path: Path) -> None:
    """The negative control: the Python side checks ports (the same bind
    check) without reserving them. Rust then takes ports Python holds, and
    the race must count it: its zeros above mean something."""
    race = port_race.race_with_rust(
        port_bench(), python_workers=16, threads=16, allocs=1600, markers_parent=tmp_path,
        python_arm=port_race.CONTROL_ARM, port_range=NARROW,
    )  # fmt: skip
    assert not race["rust"]["failures"] and not race["python"]["failures"], describe(race)
    assert race["rust"]["double_grants"] > 0, describe(race)


def test_the_marker_check_counts_a_second_claim(tmp_path: Path) -> None:
    """Two claims of one number: one double grant, and only the first
    claimer removes the marker. The race's zeros mean something only if
    this fires."""
    tally = port_race.Tally()
    first = port_race.claim_marker(tmp_path, 24242, tally)
    second = port_race.claim_marker(tmp_path, 24242, tally)
    other = port_race.claim_marker(tmp_path, 24243, tally)
    assert tally.double_grants == 1
    assert first is not None and first.owned
    assert second is not None and not second.owned
    assert other is not None and other.owned
    second.remove()
    assert (tmp_path / "24242").exists()
    first.remove()
    assert not (tmp_path / "24242").exists()


def test_a_cycle_on_a_held_port_is_a_double_grant(tmp_path: Path) -> None:
    """The whole cycle, with an allocator that grants a number someone
    already marked (as a broken allocator would): the cycle counts it."""
    with socket.socket() as s:  # a number nobody listens on right now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    holder = port_race.claim_marker(tmp_path, port, port_race.Tally())
    assert holder is not None and holder.owned
    released = []
    job = port_race.Job(
        lambda: port_race.Grant(port, lambda: released.append(port)), tmp_path
    )
    tally = port_race.Tally()
    port_race.cycle(job, random.Random(0), tally)
    assert tally.double_grants == 1, tally.notes
    assert tally.allocations == 1 and released == [port]
    assert (tmp_path / str(port)).exists(), "the second claimer removed the holder's marker"


def test_the_rust_worker_output_is_understood() -> None:
    """The tally lines port_bench's worker prints (port_bench.rs `encode`)."""
    text = (
        "tally 2 1 0 3\nlat 5000 7000 9000\nlatfirst 5000\nlatlast 9000\n"
        "note bind 127.0.0.1:20001: Address in use\nplace 0 4026531841 2049\n"
    )
    t = port_race.Tally.decode(text)
    assert (t.double_grants, t.bind_failures, t.alloc_errors, t.conn_errors) == (2, 1, 0, 3)
    assert t.latencies_ns == [5000, 7000, 9000] and t.allocations == 3
    assert t.notes == ["bind 127.0.0.1:20001: Address in use"]
