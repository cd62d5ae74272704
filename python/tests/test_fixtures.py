"""The plugin's fixtures: free_port, etcd, nats, dynamo_run; the port table
in a failing test's output; pytest -n 4."""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.request
from pathlib import Path

import pytest

import dynamo_test
from dynamo_test import Etcd, Nats, TestRun


def test_free_port_is_reserved_for_the_test(free_port: int, dynamo_run: TestRun) -> None:
    assert isinstance(free_port, int)
    held = [r for r in dynamo_test.reservations() if r["port"] == free_port]
    assert held and held[0]["pid"] == os.getpid()
    assert dynamo_run.name in (held[0]["label"] or "")
    assert f"free_port={free_port}" in dynamo_run.port_table()
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port))


def test_ports_are_released_when_the_test_ends() -> None:
    run = TestRun("tests/test_fixtures.py::inner")
    port = run.reserve_port("p")
    assert any(r["port"] == port for r in dynamo_test.reservations())
    assert run.finish() == ([], None)
    assert not any(r["port"] == port and r["pid"] == os.getpid() for r in dynamo_test.reservations())
    # Finished: a second finish does nothing, and nothing more is held.
    assert run.finish() == ([], None)
    with pytest.raises(dynamo_test.DynamoTestError, match="has finished"):
        run.reserve_port("late")


def test_etcd_is_healthy_with_a_prefix_of_the_tests_own(etcd: Etcd, dynamo_run: TestRun) -> None:
    assert etcd.source in ("shared-started", "shared-external", "from-env")
    assert etcd.key_prefix == f"/{dynamo_run.namespace}/"
    etcd.put(etcd.key("model"), "tiny")
    assert etcd.get(etcd.key("model")) == "tiny"
    assert etcd.list(etcd.key_prefix) == [(etcd.key("model"), "tiny")]
    assert etcd.env() == {"ETCD_ENDPOINTS": ",".join(etcd.endpoints)}
    assert ("ETCD_ENDPOINTS", ",".join(etcd.endpoints)) in dynamo_run.child_env()
    assert dynamo_test.wait_etcd(etcd.url, 10) >= 0
    # Its own /health, read here without the harness.
    with urllib.request.urlopen(f"{etcd.url}/health", timeout=10) as answer:
        assert json.load(answer)["health"] == "true"


def test_a_tests_etcd_keys_are_deleted_when_it_ends(etcd: Etcd) -> None:
    inner = TestRun("tests/test_fixtures.py::keys")
    theirs = inner.etcd()
    assert theirs.key_prefix != etcd.key_prefix
    theirs.put(theirs.key("a"), "1")
    etcd.put(etcd.key("mine"), "2")
    assert etcd.get(theirs.key("a")) == "1"
    assert inner.finish() == ([], None)
    assert etcd.get(theirs.key("a")) is None
    assert etcd.get(etcd.key("mine")) == "2"


def test_nats_is_healthy_with_a_subject_prefix(nats: Nats, dynamo_run: TestRun) -> None:
    assert nats.subject_prefix == f"{dynamo_run.namespace}."
    assert nats.subject("x") == f"{dynamo_run.namespace}.x"
    assert nats.env() == {"NATS_SERVER": ",".join(nats.urls)}
    host, port = nats.url.removeprefix("nats://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        assert s.makefile().readline().startswith("INFO ")
    assert dynamo_test.wait_nats(nats.url, 10) >= 0
    if nats.monitor_url is not None:
        assert dynamo_test.wait_http(f"{nats.monitor_url}/healthz", 10, contains="ok") >= 0


def test_a_failing_tests_output_shows_its_port_table(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_fails(free_port, service_ports):
            assert free_port == -1
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "Captured stdout call" in text
    line = next(l for l in text.splitlines() if "[dynamo-test]" in l and "ports:" in l)
    assert "test_fails: ports: free_port=" in line
    assert "service_ports.dynamo_serve=" in line
    # And in the failure's own section, with the report's path.
    assert "- dynamo-test -" in text
    assert re.search(r"failure report \(written at teardown\): \S+/failure.md", text)
    assert f"service_ports.etcd_client={dynamo_test.SERVICE_PORTS['etcd_client']}" in line


def test_a_passing_tests_port_table_is_captured_not_shown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_passes(free_port):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "ports: free_port=" not in result.stdout.str()
    shown = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    assert "ports: free_port=" in shown.stdout.str()


def test_etcd_endpoints_in_the_environment_are_used(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, etcd: Etcd
) -> None:
    pytester.makepyfile(
        """
        def test_inner(etcd):
            print("SOURCE", etcd.source, etcd.url)
            assert etcd.get(etcd.key("x")) is None
        """
    )
    url = etcd.url.replace("127.0.0.1", "localhost")
    monkeypatch.setenv("ETCD_ENDPOINTS", url)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert f"SOURCE from-env {url}" in result.stdout.str()


@pytest.mark.parametrize(
    "service, var, value, expected",
    [
        ("etcd", "ETCD_ENDPOINTS", "localhost:2379", "http://"),
        ("nats", "NATS_SERVER", "http://127.0.0.1:4222", "nats://"),
    ],
)
def test_bad_service_endpoints_name_the_variable(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    service: str,
    var: str,
    value: str,
    expected: str,
) -> None:
    pytester.makepyfile(
        f"""
        import pytest
        def test_inner(dynamo_run):
            with pytest.raises(ValueError) as raised:
                dynamo_run.{service}()
            print("ERROR", raised.value)
        """
    )
    monkeypatch.setenv(var, value)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    text = result.stdout.str()
    assert f'{var}="{value}"' in text and expected in text


def test_nats_server_in_the_environment_is_used(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, nats: Nats
) -> None:
    pytester.makepyfile(
        """
        def test_inner(nats):
            print("SOURCE", nats.source, nats.url, nats.port)
        """
    )
    monkeypatch.setenv("NATS_SERVER", nats.url)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert f"SOURCE from-env {nats.url} None" in result.stdout.str()


def etcd_error_with_interpreter(pytester: pytest.Pytester, interpreter: str) -> str:
    """What obtaining etcd says in a process whose `sys.executable` is
    `interpreter` (the keeper's launcher), with the plan's etcd on ports
    of its own, so that a keeper must start."""
    with dynamo_test.find_free_port() as client, dynamo_test.find_free_port() as peer:
        pytester.makepyfile(
            f"""
            import os, sys
            sys.executable = "{interpreter}"
            os.environ["DYNAMO_TEST_ETCD_CLIENT_PORT"] = "{client.port}"
            os.environ["DYNAMO_TEST_ETCD_PEER_PORT"] = "{peer.port}"
            os.environ.pop("ETCD_ENDPOINTS", None)
            import pytest
            import dynamo_test

            def test_inner():
                run = dynamo_test.TestRun("inner")
                with pytest.raises(dynamo_test.ServiceError) as raised:
                    run.etcd()
                print("ERROR", raised.value)
                run.finish()
            """
        )
        result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", "-p", "no:dynamo_test")
    result.assert_outcomes(passed=1)
    return result.stdout.str()


def test_a_keeper_that_cannot_start_says_why(pytester: pytest.Pytester) -> None:
    # An interpreter path that does not exist: the keeper cannot be run.
    text = etcd_error_with_interpreter(pytester, "/nonexistent/python3")
    assert "could not start the keeper of the shared etcd on port" in text, text
    assert "(/nonexistent/python3): No such file or directory" in text, text


def test_a_failing_test_gets_the_failure_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_fails(free_port, etcd):
            etcd.put(etcd.key("worker/1"), "up")
            assert free_port == -1, "the frontend did not come up"

        def test_passes(free_port):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    paths = re.findall(r"test_fails: failure report: (\S+)", text)
    assert len(paths) == 1, text
    assert "test_passes: failure report" not in text
    report = Path(paths[0]).read_text()
    assert Path(paths[0]).name == "failure.md"
    assert "failed: AssertionError: the frontend did not come up" in report
    assert "free_port" in report
    assert "etcd" in report and "worker/1" in report


def test_a_failed_setup_shows_the_port_table_and_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def frontend(free_port):
            raise RuntimeError("the frontend would not start")

        def test_errors(frontend):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    assert "the frontend would not start" in text
    assert re.search(r"ports: free_port=\d+", text), text
    path = re.search(r"failure report \(written at teardown\): (\S+)", text)
    assert path, text
    report = Path(path.group(1)).read_text()
    assert "setup failed: RuntimeError: the frontend would not start" in report


def test_a_bad_service_grace_names_the_variable(pytester: pytest.Pytester) -> None:
    # The plan's etcd on ports of its own, so that a keeper must start and
    # read its grace.
    with dynamo_test.find_free_port() as client, dynamo_test.find_free_port() as peer:
        pytester.makepyfile(
            f"""
            import os
            os.environ["DYNAMO_TEST_ETCD_CLIENT_PORT"] = "{client.port}"
            os.environ["DYNAMO_TEST_ETCD_PEER_PORT"] = "{peer.port}"
            os.environ["DYNAMO_TEST_SERVICE_GRACE_MS"] = "forever"
            os.environ.pop("ETCD_ENDPOINTS", None)
            import pytest

            def test_inner(dynamo_run):
                with pytest.raises(ValueError) as raised:
                    dynamo_run.etcd()
                print("ERROR", raised.value)
            """
        )
        result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert 'DYNAMO_TEST_SERVICE_GRACE_MS="forever"' in result.stdout.str()


def test_a_launcher_that_fails_leaves_its_words_in_the_error(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    # An "interpreter" that fails before it runs the keeper: what it said
    # reaches the keeper's log, and the log's tail the test's error.
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho 'fake python: cannot load the module' >&2\nexit 3\n")
    fake.chmod(0o755)
    text = etcd_error_with_interpreter(pytester, str(fake))
    assert "its launcher exited with code 3 before it ran the keeper" in text, text
    assert "fake python: cannot load the module" in text, text
    assert f"it is run by {fake}" in text, text
