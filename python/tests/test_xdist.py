"""pytest -n 4: xdist's workers are processes; each test still gets ports of
its own, and all of them share one etcd with namespaces of their own."""

from __future__ import annotations

import json

import pytest

INNER = """
import json, os, socket, time, pytest

@pytest.mark.parametrize("i", range(16))
def test_one(i, free_port, service_ports, etcd, dynamo_run):
    ports = [free_port, service_ports["dynamo_serve"]]
    # The independent check: one O_EXCL marker per held number, shared by
    # every worker; a number granted twice at once finds its marker taken.
    markers = [os.path.join(os.environ["MARKERS"], str(p)) for p in ports]
    for m in markers:
        os.close(os.open(m, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    listeners = [socket.create_server(("127.0.0.1", p)) for p in ports]
    record = {
        "worker": os.environ.get("PYTEST_XDIST_WORKER"),
        "ports": ports,
        "etcd": etcd.url,
        "namespace": dynamo_run.namespace,
    }
    etcd.put(etcd.key("seen"), json.dumps(record))
    assert json.loads(etcd.get(etcd.key("seen"))) == record
    time.sleep(0.2)  # hold the ports while the other workers take theirs
    for l in listeners:
        l.close()
    for m in markers:
        os.remove(m)
    with open(os.environ["RECORDS"], "a") as f:
        f.write(json.dumps(record) + "\\n")
"""


def test_four_workers_share_one_etcd_and_never_a_port(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(INNER)
    records = pytester.path / "records.jsonl"
    markers = pytester.mkdir("markers")
    monkeypatch.setenv("RECORDS", str(records))
    monkeypatch.setenv("MARKERS", str(markers))
    result = pytester.runpytest_subprocess("-n", "4", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=16)
    seen = [json.loads(line) for line in records.read_text().splitlines()]
    assert len(seen) == 16
    assert len({r["worker"] for r in seen}) >= 2, "xdist ran everything in one worker"
    assert len({r["etcd"] for r in seen}) == 1
    assert len({r["namespace"] for r in seen}) == 16
    assert list(markers.iterdir()) == []
