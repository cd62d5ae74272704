"""dynamo-test for Python: the Rust harness's port reservations, shared
etcd/NATS and readiness probes, one implementation for both languages.

>>> from dynamo_test import find_free_port, SERVICE_PORTS
>>> with find_free_port() as port:
...     assert 20000 <= port.port <= 32767
>>> SERVICE_PORTS["etcd_client"]
2379

The pytest plugin (``dynamo_test.plugin``, registered by entry point)
adds the fixtures ``service_ports``, ``free_port``, ``etcd``, ``nats``
and ``dynamo_run``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping

from . import _native
from ._errors import DynamoTestError, EnvVarError, NotReadyError, PortError, ServiceError
from ._native import (
    Etcd,
    Nats,
    Reservation,
    TestRun,
    dynamic_range,
    reservations,
    shared_services,
    wait_etcd,
    wait_http,
    wait_nats,
)

__all__ = [
    "SERVICE_PORTS",
    "DynamoTestError",
    "EnvVarError",
    "Etcd",
    "Nats",
    "NotReadyError",
    "PortError",
    "Reservation",
    "ServiceError",
    "TestRun",
    "dynamic_range",
    "find_free_port",
    "find_free_port_from",
    "reservations",
    "service_ports",
    "shared_services",
    "wait_etcd",
    "wait_http",
    "wait_nats",
    "wait_openai_models",
]

# Shared etcd/NATS are run by a keeper process: this interpreter, loading
# the native library and calling into it (the Rust harness re-runs its
# test binary instead).
# (An embedded interpreter may have no sys.executable: the running binary
# is the interpreter then.)
_native.set_keeper_launcher(sys.executable or os.path.realpath("/proc/self/exe"), _native.__file__)


def _holder_label() -> str:
    """Who holds a port, as `dynamo-test ports` shows it: the running
    pytest test if any, else the program; and the thread."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    who = test or f"python {os.path.basename(sys.argv[0] or '-')} pid {os.getpid()}"
    thread = threading.current_thread()
    if thread is not threading.main_thread():
        who += f" [{thread.name}]"
    return who


def find_free_port(label: str | None = None) -> Reservation:
    """Reserves a random free port from the dynamic range (20000-32767 by
    default, ``DYNAMO_TEST_PORT_RANGE``). The reservation holds until
    ``release()``, the end of a ``with`` block, garbage collection or the
    death of this process; ``.port`` (or ``int(r)``) is the number."""
    return _native.find_free_port(label or _holder_label())


def find_free_port_from(base: int, label: str | None = None) -> Reservation:
    """Reserves the first free port at or above ``base`` (``8000`` for
    "Dynamo serve on 8000+"); the plan's fixed ports are skipped."""
    return _native.find_free_port_from(base, label or _holder_label())


def service_ports() -> dict[str, int]:
    """The port plan in force: ``etcd_client``, ``etcd_peer``,
    ``nats_client``, ``nats_http``, ``dynamo_serve_base``, with the env
    overrides (``DYNAMO_TEST_ETCD_CLIENT_PORT`` and so on) applied. A bad
    value raises ``EnvVarError`` (a ``ValueError``) naming the variable."""
    return _native.service_ports()


class _ServicePorts(Mapping[str, int]):
    """The port plan as a read-only mapping, read from the environment at
    each access (as the Rust side reads it), so overrides always apply."""

    def __getitem__(self, key: str) -> int:
        return service_ports()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(service_ports())

    def __len__(self) -> int:
        return len(service_ports())

    def __repr__(self) -> str:
        return f"SERVICE_PORTS({service_ports()!r})"


SERVICE_PORTS: Mapping[str, int] = _ServicePorts()
"""The plan: ``SERVICE_PORTS["etcd_client"]`` is 2379 unless
``DYNAMO_TEST_ETCD_CLIENT_PORT`` says otherwise."""


def wait_openai_models(base_url: str, models: str | Iterable[str], timeout: float = 60.0) -> float:
    """Waits until the OpenAI-compatible server at ``base_url`` lists every
    one of ``models`` in ``GET /v1/models``; returns the seconds it took,
    or raises ``NotReadyError`` with the story of the wait."""
    wanted = [models] if isinstance(models, str) else list(models)
    return _native.wait_openai_models(base_url, wanted, timeout)
