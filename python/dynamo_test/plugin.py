"""The pytest plugin of dynamo-test (registered through the ``pytest11``
entry point): fixtures on the Rust harness's reservations and services.

Fixtures (each test gets its own):

- ``dynamo_run``: the harness's side of the test (``TestRun``): its
  namespace, output directory and port table; everything it holds is
  released when the test ends.
- ``service_ports``: the port plan in force, with ``dynamo_serve``
  reserved for the test from ``dynamo_serve_base``.
- ``free_port``: a port reserved for the test (an ``int``).
- ``etcd`` / ``nats``: the shared instances on the plan's fixed ports,
  started by the first user (Rust or Python) and stopped a grace after the
  last; ``ETCD_ENDPOINTS`` / ``NATS_SERVER`` name external ones instead.
  Keys under ``etcd.key_prefix`` are deleted when the test ends.

Every test's port table is printed into its captured output when its body
starts; a failing test also gets the Rust side's failure report
(``failure.md``: the verdict, the ports, the services and the test's etcd
keys as they were before teardown), and its failure shows a
``dynamo-test`` section with the port table and the report's path.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from . import Etcd, Nats, TestRun, service_ports as _plan

_RUN = pytest.StashKey[TestRun]()
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    # Setup is over: every fixture has reserved what it needs.
    run = item.stash.get(_RUN, None)
    if run is not None:
        print(f"[dynamo-test] {run.name}: ports: {run.port_table()}")


def pytest_report_header(config: pytest.Config) -> str:
    try:
        plan = " ".join(f"{k}={v}" for k, v in _plan().items())
    except ValueError as e:
        plan = f"unusable: {e}"
    return f"dynamo-test: port plan {plan}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # Setup's and the body's verdicts, for the failure report at teardown.
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    run = item.stash.get(_RUN, None)
    if run is not None and report.failed and report.when in ("setup", "call"):
        # Shown with the failure, also for a failed setup (whose captured
        # output would not show what teardown prints) and under xdist.
        report.sections.append(
            (
                "dynamo-test",
                f"ports: {run.port_table()}\n"
                f"failure report (written at teardown): {run.output_dir / 'failure.md'}",
            )
        )
    return report


def _failure(item: pytest.Item) -> str | None:
    """The test's failure in words, as the Rust side words its verdicts;
    `None` if setup and body passed."""
    for phase, report in item.stash.get(_REPORTS, {}).items():
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
            return f"setup failed: {message}" if phase == "setup" else f"failed: {message}"
    return None


@pytest.fixture
def dynamo_run(request: pytest.FixtureRequest) -> Iterator[TestRun]:
    """The harness's side of this test: namespace, output directory, port
    table; released (ports, etcd keys) when the test ends, after the
    failure report (``failure.md`` in its output directory) of a failed
    test is written."""
    run = TestRun(request.node.nodeid)
    request.node.stash[_RUN] = run
    yield run
    problems, report = run.finish(_failure(request.node))
    if report is not None:
        print(f"[dynamo-test] {run.name}: failure report: {report}")
    if problems:
        pytest.fail("dynamo-test teardown: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def service_ports(dynamo_run: TestRun) -> dict[str, int]:
    """The port plan in force, with ``dynamo_serve`` reserved for this test."""
    return dynamo_run.service_ports("service_ports")


@pytest.fixture
def free_port(dynamo_run: TestRun) -> int:
    """A port reserved for this test until it ends."""
    return dynamo_run.reserve_port("free_port")


@pytest.fixture
def etcd(dynamo_run: TestRun) -> Etcd:
    """The test's etcd, healthy, with a key prefix of its own."""
    return dynamo_run.etcd()


@pytest.fixture
def nats(dynamo_run: TestRun) -> Nats:
    """The test's NATS, healthy, with a subject prefix of its own."""
    return dynamo_run.nats()
