#!/usr/bin/env python3
"""Port allocator race for Python: ``dynamo_test.find_free_port()`` against
the two helpers Dynamo's Python tests use, and against the Rust side of
dynamo-test at the same time.

    python port_race.py [--procs P] [--threads T] [--allocs N]
                        [--arm all|dynamo|bind0|registry]
                        [--listener closed|open] [--settle on|off]
                        [--bind-delay-us US] [--markers DIR]
    python port_race.py --with-rust PATH [--procs P] [--threads T]
                        [--rust-threads R] [--allocs N] [--serve on|off]
                        [--arm unreserved]

The Python twin of ``examples/src/bin/port_bench.rs``. Arms:

- ``dynamo``: ``dynamo_test.find_free_port()``, the Rust reservation code
  (an abstract Unix socket per port plus a TCP bind check);
- ``bind0``: ``find_free_port()`` of Dynamo's ``tests/utils.py``, bind
  port 0, read the number, close (a check only, nothing reserves it);
- ``registry``: ``allocate_port(8000)`` of Dynamo's
  ``tests/utils/port_utils.py`` (8000 is where its frontend fixture
  starts), a JSON registry under an ``flock``, entries expiring after 900 s.

For each arm the script re-executes itself as P worker processes (hidden
``--worker`` flag) of T threads; the N allocations are split across them.
Every worker says ``ready`` once it has imported what it needs, and all
start on one ``go``. Each cycle: allocate (only this call is timed), claim
an ``O_EXCL`` marker file ``<markers>/<port>`` (already there: a *double
grant*), after 0-2 ms bind ``127.0.0.1:port`` with ``SO_REUSEADDR`` as
Rust's ``TcpListener::bind`` does (failure: a *bind failure*), connect one
client, accept, close the server side first (it goes to TIME_WAIT), close
the listener, hold 0-20 ms, remove the marker, release. ``--bind-delay-us``
widens the 0-2 ms (a real server takes far longer to start and bind).

``--with-rust PATH`` runs one Rust ``port_bench --worker --arm dynamo``
process (``--rust-threads`` threads) at the same time as P Python
``dynamo`` workers, all sharing one marker directory: a port granted to
both languages at once is a double grant on whichever side marks second.
There no cycle serves a connection unless ``--serve on``: a served port
sits in TIME_WAIT, which the bind checks see, and the race is to test the
reservations. ``--arm unreserved`` makes the Python side the negative
control (ports checked, never reserved): that race must collide.

The exit code is 1 if a ``dynamo_test`` arm (Python or Rust) had a double
grant or a bind failure, or a worker failed; 2 on a usage error.

Stdlib only, plus ``dynamo_test`` for the ``dynamo`` arm. Importable: the
cross-language test calls :func:`race_with_rust`.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import inspect
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

ARMS = ("dynamo", "bind0", "registry")
# The negative control of the cross-language race: a random port of the
# dynamic range that passes the allocator's bind check, reserved nowhere.
CONTROL_ARM = "unreserved"

# How long a run's workers may take before they are killed (a hung worker
# must not hang the test that runs the race).
WORKER_DEADLINE_S = 300.0

# The cycle, as in port_bench.rs.
MAX_BIND_DELAY_US = 2_000
MAX_HOLD_US = 20_000
MAX_NOTES = 3

# `--settle on`: an arm starts once at most this share of its own port
# range is in TIME_WAIT (1% of 20000-32767 is port_bench's 128), waiting at
# most SETTLE_LIMIT_S (TIME_WAIT lasts 60 s on Linux).
SETTLED_SHARE = 0.01
SETTLE_LIMIT_S = 65.0

# Dynamo's registry: where its tests start looking (DefaultPort.FRONTEND,
# the `dynamo_dynamic_ports` fixture), and its constants.
REGISTRY_START_PORT = 8000
REGISTRY_PORT_MIN = 1024
REGISTRY_PORT_MAX = 32767
REGISTRY_MAX_RETRIES = 100
REGISTRY_MAX_AGE_S = 900.0


# ---------------------------------------------------------------------------
# Dynamo's helpers, mirrored
# ---------------------------------------------------------------------------


def bind0_port() -> int:
    """Dynamo's ``find_free_port()``, as in ai-dynamo/dynamo
    ``tests/utils.py`` (commit 4423f1a2): bind port 0 on all addresses, read
    the number the kernel chose, close. Mirrored line for line; it checks
    but reserves nothing, so two callers can get the same number between
    the close and their servers' binds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        port: int = s.getsockname()[1]
        return port


class PortRegistry:
    """Dynamo's locked registry, as in ai-dynamo/dynamo
    ``tests/utils/port_utils.py`` (commit 17d0fb91): ``allocate_ports``,
    ``allocate_port``, ``deallocate_ports``, ``deallocate_port``, mirrored
    line for line except that the lock and JSON files live in ``directory``
    instead of the system temp dir (so a run never touches a real Dynamo
    checkout's registry).

    How it works: under an exclusive ``flock`` of the lock file, load the
    JSON registry, drop entries older than 900 s, walk up from
    ``start_port + randint(0, 100)`` (wrapping to 1024 after 32767) for at
    most 100 candidates, skip registered numbers, check a candidate with a
    plain ``bind(("", port))`` (no ``SO_REUSEADDR``, so a port in TIME_WAIT
    fails), record it with a timestamp and the caller, save. Release removes
    the entry under the lock."""

    def __init__(self, directory: Path) -> None:
        self.lock_file = directory / "pytest_port_allocations.lock"
        self.registry_file = directory / "pytest_port_allocations.json"

    def _load_port_registry(self) -> dict[str, Any]:
        if not self.registry_file.exists():
            return {}
        try:
            with open(self.registry_file, "r") as f:
                registry: dict[str, Any] = json.load(f)
                return registry
        except (json.JSONDecodeError, OSError):
            return {}

    def _save_port_registry(self, registry: dict[str, Any]) -> None:
        with open(self.registry_file, "w") as f:
            json.dump(registry, f)

    @staticmethod
    def _cleanup_stale_allocations(
        registry: dict[str, Any], max_age: float = REGISTRY_MAX_AGE_S
    ) -> dict[str, Any]:
        current_time = time.time()
        cleaned = {}
        for port, info in registry.items():
            timestamp = info.get("timestamp", 0) if isinstance(info, dict) else info
            if current_time - timestamp < max_age:
                cleaned[str(port)] = info
        return cleaned

    def allocate_ports(self, count: int, start_port: int) -> list[int]:
        caller_file, caller_function, caller_line = "unknown", "unknown", 0
        frame = inspect.currentframe()
        if frame and frame.f_back:
            caller_frame = frame.f_back
            caller_info = inspect.getframeinfo(caller_frame)
            caller_function = caller_frame.f_code.co_name
            caller_file = caller_info.filename
            caller_line = caller_info.lineno

        if start_port < REGISTRY_PORT_MIN or start_port > REGISTRY_PORT_MAX:
            raise ValueError(
                f"start_port must be between {REGISTRY_PORT_MIN} and {REGISTRY_PORT_MAX}, "
                f"got {start_port}"
            )
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        self.lock_file.touch(exist_ok=True)
        if not os.access(self.lock_file, os.W_OK):
            raise PermissionError(f"Port allocation lock file is not writable: {self.lock_file}")

        with open(self.lock_file, "r+") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                registry = self._cleanup_stale_allocations(self._load_port_registry())
                allocated_ports = set(int(p) for p in registry.keys())
                ports: list[int] = []

                current_port = start_port + random.randint(0, 100)
                if current_port > REGISTRY_PORT_MAX:
                    current_port = REGISTRY_PORT_MIN + (current_port - REGISTRY_PORT_MAX - 1)
                attempts = 0
                while len(ports) < count and attempts < REGISTRY_MAX_RETRIES:
                    attempts += 1
                    port = current_port
                    current_port += 1
                    if current_port > REGISTRY_PORT_MAX:
                        current_port = REGISTRY_PORT_MIN
                    if port in allocated_ports or port in ports:
                        continue
                    try:
                        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        sock.bind(("", port))
                        sock.close()
                        ports.append(port)
                        registry[str(port)] = {
                            "timestamp": time.time(),
                            "caller_file": caller_file,
                            "caller_function": caller_function,
                            "caller_line": caller_line,
                        }
                    except OSError:
                        # As in Dynamo: the failed socket is left to the GC.
                        continue
                if len(ports) < count:
                    raise RuntimeError(
                        f"Could not find {count} available ports after "
                        f"{REGISTRY_MAX_RETRIES} retries"
                    )
                self._save_port_registry(registry)
                return ports
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def allocate_port(self, start_port: int) -> int:
        return self.allocate_ports(1, start_port)[0]

    def deallocate_ports(self, ports: list[int]) -> None:
        if not ports:
            return
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        self.lock_file.touch(exist_ok=True)
        with open(self.lock_file, "r+") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                registry = self._load_port_registry()
                for port in ports:
                    registry.pop(str(port), None)
                self._save_port_registry(registry)
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def deallocate_port(self, port: int) -> None:
        self.deallocate_ports([port])


# ---------------------------------------------------------------------------
# Allocators: one call per cycle, timed
# ---------------------------------------------------------------------------


@dataclass
class Grant:
    """A granted port and how to give it back (after the hold, untimed)."""

    port: int
    release: Callable[[], None]


def unreserved_port(low: int, high: int) -> int:
    """A random port of ``low..=high`` that nothing has bound: the bind
    check of the dynamo allocator (``[::]``, dual-stack, no SO_REUSEADDR)
    without its reservation. Only a control: it collides by design."""
    for _ in range(1000):
        port = random.randint(low, high)
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            try:
                s.bind(("::", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no port of {low}-{high} passed the bind check in 1000 tries")


def make_allocator(arm: str, registry_dir: Path | None) -> Callable[[], Grant]:
    """The timed call of an arm. Imports happen here, before the worker
    says ``ready``, so no import lands in the first timed call."""
    if arm == "dynamo":
        import dynamo_test

        def dynamo() -> Grant:
            r = dynamo_test.find_free_port()
            return Grant(r.port, r.release)

        return dynamo
    if arm == "bind0":
        return lambda: Grant(bind0_port(), lambda: None)
    if arm == CONTROL_ARM:
        low, high = port_range("dynamo")
        return lambda: Grant(unreserved_port(low, high), lambda: None)
    if arm == "registry":
        if registry_dir is None:
            raise ValueError("the registry arm needs a registry directory")
        registry = PortRegistry(registry_dir)

        def locked() -> Grant:
            port = registry.allocate_port(REGISTRY_START_PORT)
            return Grant(port, lambda: registry.deallocate_port(port))

        return locked
    raise ValueError(f"unknown arm {arm!r}")


# ---------------------------------------------------------------------------
# Tallies and their wire format (the Rust worker's, plus `at` and `span`)
# ---------------------------------------------------------------------------


@dataclass
class Tally:
    """What one thread, one worker or one whole side counted."""

    double_grants: int = 0
    bind_failures: int = 0
    alloc_errors: int = 0
    conn_errors: int = 0
    # Duration of every allocation call, failed ones included (as in Rust).
    latencies_ns: list[int] = field(default_factory=list)
    # The same, of the calls that granted a port (differs when some failed).
    granted_ns: list[int] = field(default_factory=list)
    # time.monotonic_ns() at the start of each call: CLOCK_MONOTONIC is one
    # clock for every process, so these compare across workers.
    starts_ns: list[int] = field(default_factory=list)
    # First call's start and last release's end, monotonic (None: no cycle).
    span: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def allocations(self) -> int:
        """Successful allocations."""
        return len(self.latencies_ns) - self.alloc_errors

    def note(self, msg: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(msg.replace("\n", " | "))

    def cover(self, start_ns: int, end_ns: int) -> None:
        """Widens the span to include [start_ns, end_ns]."""
        if self.span is None:
            self.span = (start_ns, end_ns)
        else:
            self.span = (min(self.span[0], start_ns), max(self.span[1], end_ns))

    def merge(self, other: Tally) -> None:
        self.double_grants += other.double_grants
        self.bind_failures += other.bind_failures
        self.alloc_errors += other.alloc_errors
        self.conn_errors += other.conn_errors
        self.latencies_ns.extend(other.latencies_ns)
        self.granted_ns.extend(other.granted_ns)
        self.starts_ns.extend(other.starts_ns)
        if other.span is not None:
            self.cover(*other.span)
        for n in other.notes:
            self.note(n)

    def encode(self) -> str:
        lines = [
            f"tally {self.double_grants} {self.bind_failures} "
            f"{self.alloc_errors} {self.conn_errors}",
            "lat " + " ".join(map(str, self.latencies_ns)),
            "latok " + " ".join(map(str, self.granted_ns)),
            "at " + " ".join(map(str, self.starts_ns)),
        ]
        if self.span is not None:
            lines.append(f"span {self.span[0]} {self.span[1]}")
        lines += [f"note {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    @staticmethod
    def decode(text: str) -> Tally:
        """Parses a Python or a Rust (``port_bench --worker``) worker's output.
        The Rust one's ``latfirst``/``latlast``/``place`` lines are skipped."""
        t = Tally()
        saw_tally = False
        for line in text.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "tally":
                counts = [int(w) for w in rest.split()]
                if len(counts) != 4:
                    raise ValueError(f"bad tally line {line!r}")
                t.double_grants, t.bind_failures, t.alloc_errors, t.conn_errors = counts
                saw_tally = True
            elif kind == "lat":
                t.latencies_ns = [int(w) for w in rest.split()]
            elif kind == "latok":
                t.granted_ns = [int(w) for w in rest.split()]
            elif kind == "at":
                t.starts_ns = [int(w) for w in rest.split()]
            elif kind == "span":
                start, end = (int(w) for w in rest.split())
                t.span = (start, end)
            elif kind == "note":
                t.note(rest)
            elif kind in ("latfirst", "latlast", "place", "ready"):
                continue
            else:
                raise ValueError(f"unexpected worker output {line!r}")
        if not saw_tally:
            raise ValueError("worker printed no tally")
        return t

    def as_dict(self) -> dict[str, Any]:
        """Counts and latency figures, for callers that want plain data."""
        lat = sorted(self.latencies_ns)
        return {
            "allocations": self.allocations,
            "double_grants": self.double_grants,
            "bind_failures": self.bind_failures,
            "alloc_errors": self.alloc_errors,
            "conn_errors": self.conn_errors,
            "p50_ns": percentile(lat, 0.50),
            "p99_ns": percentile(lat, 0.99),
            "max_ns": lat[-1] if lat else None,
            "granted_p50_ns": percentile(sorted(self.granted_ns), 0.50),
            "span_ns": self.span,
            "notes": list(self.notes),
        }


def percentile(sorted_ns: list[int], p: float) -> int | None:
    """Nearest rank, as ``bench::percentile`` in Rust."""
    if not sorted_ns:
        return None
    rank = math.ceil(p * len(sorted_ns))
    return sorted_ns[min(max(rank, 1), len(sorted_ns)) - 1]


# ---------------------------------------------------------------------------
# Worker: one cycle, as port_bench.rs's `cycle`
# ---------------------------------------------------------------------------


class Marker:
    """The independent double-grant check: one ``O_EXCL`` file per held port
    in a directory every worker of both languages shares."""

    def __init__(self, path: Path, owned: bool) -> None:
        self.path = path
        self.owned = owned

    @staticmethod
    def claim(directory: Path, port: int) -> Marker:
        path = directory / str(port)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            return Marker(path, owned=True)
        except FileExistsError:
            return Marker(path, owned=False)

    def remove(self) -> None:
        """Removes the marker if it is ours; the first holder of a doubly
        granted port removes it."""
        if self.owned:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


def claim_marker(directory: Path, port: int, tally: Tally) -> Marker | None:
    """Claims the port's marker, counting a double grant if someone holds it."""
    try:
        marker = Marker.claim(directory, port)
    except OSError as e:
        tally.note(f"marker for port {port}: {e}")
        return None
    tally.double_grants += int(not marker.owned)
    return marker


def serve_once(port: int, serve: bool, tally: Tally) -> socket.socket | None:
    """Binds the port as Rust's ``TcpListener::bind`` does (``SO_REUSEADDR``,
    listen backlog 128), serves one connection (with ``serve``: it leaves
    the port in TIME_WAIT), and returns the listener; ``None`` after
    counting a bind failure."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
    except OSError as e:
        listener.close()
        tally.bind_failures += 1
        tally.note(f"bind 127.0.0.1:{port}: {e}")
        return None
    if not serve:
        return listener
    try:
        one_connection(listener, port)
    except OSError as e:
        tally.conn_errors += 1
        tally.note(f"connection on port {port}: {e}")
    return listener


def one_connection(listener: socket.socket, port: int) -> None:
    """Connects a client, accepts it, and closes the server side first, so
    that the port's server side lands in TIME_WAIT."""
    listener.settimeout(5.0)
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as client:
        server, _ = listener.accept()
        server.close()  # the server sends the first FIN
        if client.recv(1) != b"":
            raise OSError(errno.EPROTO, "unexpected data from the server")


@dataclass
class Job:
    """What every cycle of a worker thread does."""

    allocate: Callable[[], Grant]
    markers: Path
    keep_listener: bool = False
    max_bind_delay_us: int = MAX_BIND_DELAY_US
    # Serve a connection each cycle? Off, no port lands in TIME_WAIT, which
    # the bind checks would otherwise see: only the reservations protect a
    # held port then (the cross-language race).
    serve: bool = True


def cycle(job: Job, rng: random.Random, tally: Tally) -> None:
    """Allocate, mark, serve one connection, hold, unmark, release."""
    at = time.monotonic_ns()
    started = time.perf_counter_ns()
    try:
        grant = job.allocate()
    except Exception as e:  # noqa: BLE001 - any allocator failure is an alloc error
        tally.latencies_ns.append(time.perf_counter_ns() - started)
        tally.alloc_errors += 1
        tally.note(f"alloc: {type(e).__name__}: {e}")
        return
    elapsed = time.perf_counter_ns() - started
    tally.latencies_ns.append(elapsed)
    tally.granted_ns.append(elapsed)
    tally.starts_ns.append(at)
    try:
        marker = claim_marker(job.markers, grant.port, tally)
        time.sleep(rng.randint(0, job.max_bind_delay_us) / 1e6)
        listener = serve_once(grant.port, job.serve, tally)
        if listener is not None and not job.keep_listener:
            listener.close()  # the server shuts down before the hold
        time.sleep(rng.randint(0, MAX_HOLD_US) / 1e6)
        if listener is not None:
            listener.close()
        if marker is not None:
            marker.remove()
    finally:
        grant.release()
    tally.cover(at, time.monotonic_ns())


def run_thread(job: Job, allocs: int) -> Tally:
    """One thread's ``allocs`` cycles."""
    rng = random.Random()  # seeded from urandom: every thread differs
    tally = Tally()
    for _ in range(allocs):
        cycle(job, rng, tally)
    return tally


def share(total: int, parts: int, index: int) -> int:
    """``total`` split into ``parts`` shares that differ by at most one."""
    return total // parts + int(index < total % parts)


def worker_main(args: argparse.Namespace) -> int:
    """Imports, says ``ready``, waits for ``go``, runs the threads, prints
    the tally on stdout."""
    registry = Path(args.registry) if args.registry else None
    job = Job(
        make_allocator(args.arm, registry),
        Path(args.markers),
        keep_listener=args.listener == "open",
        max_bind_delay_us=args.bind_delay_us,
        serve=args.serve == "on",
    )
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        print("port_race worker: no go from the parent", file=sys.stderr)
        return 1
    results: list[Tally] = []
    lock = threading.Lock()

    def body(n: int) -> None:
        t = run_thread(job, n)
        with lock:
            results.append(t)

    threads = [
        threading.Thread(target=body, args=(share(args.allocs, args.threads, i),), name=f"w{i}")
        for i in range(args.threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tally = Tally()
    for r in results:
        tally.merge(r)
    sys.stdout.write(tally.encode())
    sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------------
# Parent: workers, settling, tables
# ---------------------------------------------------------------------------


@dataclass
class SideResult:
    """One arm's (or one language's) outcome."""

    name: str
    config: str
    tally: Tally
    wall_s: float
    failures: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No double grant, no bind failure, no failed worker."""
        t = self.tally
        return t.double_grants == 0 and t.bind_failures == 0 and not self.failures


@dataclass
class Worker:
    """A started worker process and what it printed."""

    proc: subprocess.Popen[str]
    label: str
    output: str = ""
    failure: str | None = None
    # time.monotonic() when its output ended.
    finished: float = 0.0


@dataclass
class WorkerSpec:
    """A Python worker's settings, passed after the hidden ``--worker``."""

    arm: str
    threads: int
    allocs: int
    markers: Path
    registry: Path
    listener: str = "closed"
    bind_delay_us: int = MAX_BIND_DELAY_US
    serve: str = "on"

    def to_args(self) -> list[str]:
        return [
            "--worker", "--arm", self.arm, "--threads", str(self.threads),
            "--allocs", str(self.allocs), "--markers", str(self.markers),
            "--registry", str(self.registry), "--listener", self.listener,
            "--bind-delay-us", str(self.bind_delay_us), "--serve", self.serve,
        ]  # fmt: skip


def spawn_python_worker(spec: WorkerSpec, env: dict[str, str] | None = None) -> Worker:
    """This script again, as a worker; it prints ``ready`` once imported."""
    command = [sys.executable, os.path.abspath(__file__), *spec.to_args()]
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    return Worker(proc, f"python {spec.arm} worker pid {proc.pid}")


def spawn_rust_worker(
    port_bench: str, threads: int, allocs: int, markers: Path, serve: str,
    env: dict[str, str] | None = None,
) -> Worker:
    """``port_bench --worker``: waits for ``go`` on stdin, prints its tally."""
    command = [
        port_bench, "--worker", "--arm", "dynamo", "--threads", str(threads),
        "--allocs", str(allocs), "--markers", str(markers), "--listener", "closed",
        "--serve", serve,
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    return Worker(proc, f"rust port_bench worker pid {proc.pid}")


class Deadline:
    """Kills the workers still running ``seconds`` from now (they are ours:
    started by this run), so that reading their output ends."""

    def __init__(self, workers: list[Worker], seconds: float = WORKER_DEADLINE_S) -> None:
        self.workers = list(workers)  # a copy: more may join (`.workers.append`)
        self.timer = threading.Timer(seconds, self.expire)
        self.timer.daemon = True

    def expire(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.failure = w.failure or f"{w.label}: still running after its deadline, killed"
                w.proc.kill()

    def __enter__(self) -> Deadline:
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()
        # On an error in between, nothing of this run may live on.
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()


def wait_ready(workers: Iterable[Worker]) -> None:
    """Waits for each Python worker's ``ready`` (its imports are done)."""
    for w in workers:
        assert w.proc.stdout is not None
        line = w.proc.stdout.readline()
        if line.strip() != "ready":
            w.failure = f"{w.label}: not ready (printed {line!r})"


def release(workers: Iterable[Worker]) -> None:
    """Sends everyone ``go`` and closes their stdin."""
    for w in workers:
        assert w.proc.stdin is not None
        try:
            w.proc.stdin.write("go\n")
            w.proc.stdin.close()
        except (BrokenPipeError, OSError) as e:
            w.failure = w.failure or f"{w.label}: cannot send go: {e}"


def collect(workers: list[Worker]) -> None:
    """Reads every worker's output (concurrently: the pipes must not fill)
    and waits for it to exit."""

    def read(w: Worker) -> None:
        assert w.proc.stdout is not None
        w.output = w.proc.stdout.read()
        w.finished = time.monotonic()
        code = w.proc.wait()
        if code != 0 and w.failure is None:
            w.failure = f"{w.label} exited with {code}"

    readers = [threading.Thread(target=read, args=(w,)) for w in workers]
    for r in readers:
        r.start()
    for r in readers:
        r.join()


def merge_workers(workers: Iterable[Worker]) -> tuple[Tally, list[str]]:
    """The workers' tallies added up, and what went wrong with any of them."""
    tally, failures = Tally(), []
    for w in workers:
        if w.failure is not None:
            failures.append(w.failure)
            continue
        try:
            tally.merge(Tally.decode(w.output))
        except ValueError as e:
            failures.append(f"{w.label}: {e}")
    return tally, failures


def run_arm(arm: str, args: argparse.Namespace, root: Path) -> SideResult:
    """Starts the arm's workers, releases them together, adds up their tallies."""
    markers = root / f"markers-{arm}"
    registry = root / "registry"
    markers.mkdir()
    registry.mkdir(exist_ok=True)
    procs, threads = args.procs, args.threads
    workers = [
        spawn_python_worker(
            WorkerSpec(
                arm, threads, share(args.allocs, procs, i), markers, registry,
                args.listener, args.bind_delay_us, args.serve or "on",
            )
        )
        for i in range(procs)
    ]  # fmt: skip
    with Deadline(workers):
        wait_ready(workers)
        start = time.monotonic()
        release(workers)
        collect(workers)
    wall = time.monotonic() - start
    tally, failures = merge_workers(workers)
    config = f"{procs} x {threads}"
    return SideResult(arm, config, tally, wall, failures)


def port_range(arm: str) -> tuple[int, int]:
    """Where an arm's ports come from, so settling looks at that range only."""
    if arm == "dynamo":
        import dynamo_test

        return dynamo_test.dynamic_range()
    if arm == "bind0":
        return ephemeral_range()
    if arm == "registry":
        return REGISTRY_START_PORT, REGISTRY_START_PORT + 100 + REGISTRY_MAX_RETRIES
    raise ValueError(arm)


def ephemeral_range() -> tuple[int, int]:
    """The kernel's bind(0)/connect range (Linux defaults: 32768-60999)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def time_wait_count(low: int, high: int) -> int:
    """TCP sockets in TIME_WAIT with a local port in [low, high]."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "06":
                port = int(fields[1].rsplit(":", 1)[1], 16)
                count += low <= port <= high
    return count


def settle(arm: str) -> None:
    """Waits until at most SETTLED_SHARE of the arm's own range is in
    TIME_WAIT (at most SETTLE_LIMIT_S), so every arm meets a clean range.
    The three arms draw from disjoint ranges (dynamo 20000-32767, bind0 the
    ephemeral range, the registry 8000-8200), so within one run nothing
    waits; a run started right after another one waits for the previous
    run's sockets. A share, not a count: the ephemeral range always holds
    some TIME_WAIT of the machine's other clients, and the registry's 200
    ports are its whole capacity."""
    low, high = port_range(arm)
    limit = max(1, int((high - low + 1) * SETTLED_SHARE))
    start = time.monotonic()
    first = left = time_wait_count(low, high)
    while left > limit and time.monotonic() - start < SETTLE_LIMIT_S:
        time.sleep(0.5)
        left = time_wait_count(low, high)
    if first > limit:
        progress(
            f"settled {arm} ({low}-{high}): waited {time.monotonic() - start:.0f} s "
            f"for {first} TIME_WAIT sockets, {left} left"
        )


def progress(msg: str) -> None:
    print(f"port_race: {msg}", file=sys.stderr, flush=True)


def micros(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1000:.1f} us"


def table(results: list[SideResult]) -> str:
    """The Markdown table: one row per arm or side, then notes and failures."""
    lines = [
        "| arm | procs x threads | allocations | double grants | bind failures "
        "| alloc errors | p50 | p99 | max | wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    extra = []
    for r in results:
        d = r.tally.as_dict()
        lines.append(
            f"| {r.name} | {r.config} | {d['allocations']:,} | {d['double_grants']} "
            f"| {d['bind_failures']} | {d['alloc_errors']} | {micros(d['p50_ns'])} "
            f"| {micros(d['p99_ns'])} | {micros(d['max_ns'])} | {r.wall_s:.2f} s |"
        )
        if d["alloc_errors"]:
            extra.append(
                f"- {r.name}: p50 of the {d['allocations']:,} calls that granted a port "
                f"{micros(d['granted_p50_ns'])}"
            )
        if d["conn_errors"]:
            extra.append(f"- {r.name}: {d['conn_errors']} connection errors")
        extra += [f"- {r.name} first errors: {n}" for n in d["notes"]]
        extra += [f"- {r.name} WORKER FAILURE: {f}" for f in r.failures]
    return "\n".join(lines + ([""] + extra if extra else []))


def ratios(results: list[SideResult]) -> str:
    """p50 of the dynamo arm as a multiple of each other arm's, same run."""
    p50 = {r.name: r.tally.as_dict()["p50_ns"] for r in results}
    mine = p50.get("dynamo")
    parts = [
        f"dynamo / {name} = {mine / other:.3g}x"
        for name, other in p50.items()
        if name != "dynamo" and mine and other
    ]
    return "p50 ratios (same run): " + ", ".join(parts) if parts else ""


# ---------------------------------------------------------------------------
# Cross-language race
# ---------------------------------------------------------------------------


class ThreadWatch:
    """Watches a ``port_bench`` worker's threads through /proc and records
    the first and last moment (monotonic) any of its worker threads
    (named ``port_bench dynamo pid N thread i``, so ``comm`` starts with
    ``port_bench d``) was alive. Observed from outside, so the Rust side's
    real span contains this one: an overlap with it is an overlap for sure."""

    PERIOD_S = 0.001

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rust-watch", daemon=True)

    def __enter__(self) -> ThreadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def span(self) -> tuple[int, int] | None:
        if self.first_ns is None or self.last_ns is None:
            return None
        return self.first_ns, self.last_ns

    def _workers_alive(self) -> bool:
        tasks = Path(f"/proc/{self.pid}/task")
        try:
            for task in tasks.iterdir():
                if task.name == str(self.pid):
                    continue
                try:
                    if (task / "comm").read_text().startswith("port_bench d"):
                        return True
                except OSError:
                    continue
        except OSError:
            pass
        return False

    def _run(self) -> None:
        while not self._done.is_set():
            if self._workers_alive():
                now = time.monotonic_ns()
                if self.first_ns is None:
                    self.first_ns = now
                self.last_ns = now
            time.sleep(self.PERIOD_S)


def overlap_ns(a: tuple[int, int] | None, b: tuple[int, int] | None) -> int:
    """How long two [start, end] spans share (0 if either is missing)."""
    if a is None or b is None:
        return 0
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def default_markers_parent() -> Path:
    """``/var/tmp`` as in port_bench.rs (a disk directory), else the temp dir."""
    var_tmp = Path("/var/tmp")
    return var_tmp if var_tmp.is_dir() else Path(tempfile.gettempdir())


def race_with_rust(
    port_bench: str,
    python_workers: int = 16,
    threads: int = 16,
    allocs: int = 1600,
    python_threads: int = 1,
    markers_parent: Path | None = None,
    python_arm: str = "dynamo",
    serve: bool = False,
    port_range: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Runs one Rust ``port_bench`` worker (``threads`` threads, ``allocs``
    allocations) and ``python_workers`` Python ``dynamo`` workers
    (``python_threads`` threads each, ``allocs`` allocations in all) at the
    same time, on one shared marker directory.

    Returns ``{"rust": ..., "python": ...}`` (each :meth:`Tally.as_dict`
    plus ``failures`` and ``wall_s``; ``rust["span_ns"]`` is when its worker
    threads were seen alive), ``overlap_ns`` (how long the two spans
    shared), ``python_allocs_during_rust`` (Python allocations started
    while Rust threads were seen running) and ``results`` (the
    :class:`SideResult` pair, for :func:`table`).

    By default no cycle serves a connection (``serve``): a served port sits
    in TIME_WAIT, which the allocators' bind checks see, so a race with
    connections mostly tests those checks. Without, a held port is
    protected by the reservations alone. ``python_arm="unreserved"`` is the
    negative control: the Python side then checks ports without reserving
    them, and the race must find double grants. ``port_range`` narrows
    both sides' dynamic range (``DYNAMO_TEST_PORT_RANGE``), so that a
    control collides often enough to be counted."""
    parent = markers_parent or default_markers_parent()
    root = Path(tempfile.mkdtemp(prefix="port-race-", dir=parent))
    try:
        markers = root / "markers"
        markers.mkdir()
        on_off = "on" if serve else "off"
        env = None
        if port_range is not None:
            env = {**os.environ, "DYNAMO_TEST_PORT_RANGE": f"{port_range[0]}-{port_range[1]}"}
        py = [
            spawn_python_worker(
                WorkerSpec(
                    python_arm, python_threads, share(allocs, python_workers, i), markers, root,
                    serve=on_off,
                ),
                env,
            )
            for i in range(python_workers)
        ]  # fmt: skip
        with Deadline(py) as deadline:
            wait_ready(py)
            rust = spawn_rust_worker(port_bench, threads, allocs, markers, on_off, env)
            deadline.workers.append(rust)
            with ThreadWatch(rust.proc.pid) as watch:
                start = time.monotonic()
                release([rust, *py])
                collect([rust, *py])
        rust_wall = rust.finished - start
        py_wall = max(w.finished for w in py) - start
        rust_tally, rust_failures = merge_workers([rust])
        rust_tally.span = watch.span()
        py_tally, py_failures = merge_workers(py)
        sides = [
            SideResult("rust dynamo", f"1 x {threads}", rust_tally, rust_wall, rust_failures),
            SideResult(
                f"python {python_arm}", f"{python_workers} x {python_threads}", py_tally, py_wall,
                py_failures,
            ),
        ]  # fmt: skip
        return summarize_race(sides)
    finally:
        remove_tree(root)


def summarize_race(sides: list[SideResult]) -> dict[str, Any]:
    """The plain-data result of :func:`race_with_rust`."""
    rust, py = sides
    rust_span = rust.tally.span
    during = 0
    if rust_span is not None:
        during = sum(rust_span[0] <= at <= rust_span[1] for at in py.tally.starts_ns)
    out: dict[str, Any] = {"results": sides}
    for key, side in (("rust", rust), ("python", py)):
        out[key] = {**side.tally.as_dict(), "failures": side.failures, "wall_s": side.wall_s}
    out["overlap_ns"] = overlap_ns(rust_span, py.tally.span)
    out["python_allocs_during_rust"] = during
    return out


def remove_tree(root: Path) -> None:
    """Removes the run's directory (markers, registry), best effort."""
    shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number")
    return n


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="port_race", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("--procs", type=positive, default=16, help="worker processes (default 16)")
    p.add_argument("--threads", type=positive, default=1, help="threads per worker (default 1)")
    p.add_argument(
        "--allocs", type=positive, default=3200,
        help="allocations per arm (per side with --with-rust), split across all threads",
    )  # fmt: skip
    p.add_argument("--arm", choices=("all", *ARMS, CONTROL_ARM), default="all")
    p.add_argument("--listener", choices=("closed", "open"), default="closed")
    p.add_argument("--settle", choices=("on", "off"), default="on")
    p.add_argument(
        "--serve", choices=("on", "off"), default=None,
        help="serve a connection each cycle (default: on for the arms, off with --with-rust)",
    )  # fmt: skip
    p.add_argument(
        "--bind-delay-us", type=int, default=MAX_BIND_DELAY_US,
        help="longest random delay between allocation and bind (default 2000, as in Rust)",
    )  # fmt: skip
    p.add_argument("--markers", default=None, help="parent of the run's directory (/var/tmp)")
    p.add_argument("--with-rust", metavar="PATH", default=None, help="port_bench binary")
    p.add_argument("--rust-threads", type=positive, default=16)
    # Hidden: the worker side.
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--registry", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def arms_main(args: argparse.Namespace) -> int:
    """The three arms one after the other, one table."""
    arms = list(ARMS) if args.arm == "all" else [args.arm]
    parent = Path(args.markers) if args.markers else default_markers_parent()
    root = Path(tempfile.mkdtemp(prefix="port-race-", dir=parent))
    results = []
    try:
        for arm in arms:
            if args.settle == "on":
                settle(arm)
            progress(f"arm {arm}: {args.procs} x {args.threads}, {args.allocs} allocations")
            results.append(run_arm(arm, args, root))
    finally:
        remove_tree(root)
    print(
        f"port_race: {args.procs} procs x {args.threads} threads, {args.allocs} "
        f"allocations per arm, bind 0-{args.bind_delay_us / 1000:g} ms after the "
        f"allocation, listener {args.listener} during the hold\n"
    )
    print(table(results))
    line = ratios(results)
    if line:
        print(f"\n{line}")
    return 0 if all(r.clean for r in results if r.name == "dynamo") else 1


def rust_main(args: argparse.Namespace) -> int:
    """Rust and Python ``dynamo`` workers at once, one table."""
    if args.settle == "on":
        settle("dynamo")
    progress(
        f"{args.with_rust} ({args.rust_threads} threads) and {args.procs} x {args.threads} "
        f"python dynamo workers, {args.allocs} allocations per side"
    )
    parent = Path(args.markers) if args.markers else None
    serve = (args.serve or "off") == "on"
    python_arm = CONTROL_ARM if args.arm == CONTROL_ARM else "dynamo"
    race = race_with_rust(
        args.with_rust, args.procs, args.rust_threads, args.allocs, args.threads, parent,
        python_arm, serve,
    )  # fmt: skip
    print(
        f"port_race --with-rust: {args.allocs} allocations per side, one marker "
        f"directory, listener closed during the hold, connections {'served' if serve else 'none'}"
        f"{' (python side: the unreserved control)' if python_arm == CONTROL_ARM else ''}\n"
    )
    print(table(race["results"]))
    rust_span = race["rust"]["span_ns"]
    seen = f"{(rust_span[1] - rust_span[0]) / 1e9:.2f} s" if rust_span else "never"
    print(
        f"\nrust worker threads seen running for {seen}; overlap with the python "
        f"workers {race['overlap_ns'] / 1e9:.2f} s; {race['python_allocs_during_rust']:,} "
        f"python allocations started while rust threads ran"
    )
    return 0 if all(r.clean for r in race["results"] if "dynamo" in r.name) else 1


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    if args.with_rust:
        return rust_main(args)
    return arms_main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
