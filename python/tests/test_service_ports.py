"""SERVICE_PORTS and service_ports(): the plan, its keys and its env overrides."""

from __future__ import annotations

import pytest

import dynamo_test
from dynamo_test import SERVICE_PORTS, EnvVarError

PLAN_KEYS = ["etcd_client", "etcd_peer", "nats_client", "nats_http", "dynamo_serve_base"]
OVERRIDES = {
    "etcd_client": "DYNAMO_TEST_ETCD_CLIENT_PORT",
    "etcd_peer": "DYNAMO_TEST_ETCD_PEER_PORT",
    "nats_client": "DYNAMO_TEST_NATS_CLIENT_PORT",
    "nats_http": "DYNAMO_TEST_NATS_HTTP_PORT",
    "dynamo_serve_base": "DYNAMO_TEST_DYNAMO_SERVE_BASE",
}


@pytest.fixture(autouse=True)
def plain_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in OVERRIDES.values():
        monkeypatch.delenv(var, raising=False)


def test_the_plan_has_its_own_keys_and_defaults() -> None:
    assert list(SERVICE_PORTS) == PLAN_KEYS
    assert dict(SERVICE_PORTS) == {
        "etcd_client": 2379,
        "etcd_peer": 2380,
        "nats_client": 4222,
        "nats_http": 8222,
        "dynamo_serve_base": 8000,
    }
    assert len(SERVICE_PORTS) == 5
    assert dynamo_test.service_ports() == dict(SERVICE_PORTS)


@pytest.mark.parametrize("key", PLAN_KEYS)
def test_each_key_has_its_env_override(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv(OVERRIDES[key], "12345")
    assert SERVICE_PORTS[key] == 12345
    others = {k: v for k, v in SERVICE_PORTS.items() if k != key}
    assert 12345 not in others.values()


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1", "80 80"])
def test_a_bad_value_is_a_value_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DYNAMO_TEST_NATS_HTTP_PORT", value)
    with pytest.raises(ValueError) as raised:
        SERVICE_PORTS["etcd_client"]
    assert isinstance(raised.value, EnvVarError)
    message = str(raised.value)
    assert "DYNAMO_TEST_NATS_HTTP_PORT" in message
    assert repr(value).replace("'", '"') in message
    assert "port" in message


def test_two_fixed_ports_on_one_number_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAMO_TEST_ETCD_CLIENT_PORT", "4222")
    with pytest.raises(ValueError, match="DYNAMO_TEST_ETCD_CLIENT_PORT.*nats_client"):
        dict(SERVICE_PORTS)


def test_the_fixture_reserves_dynamo_serve_from_the_base(
    monkeypatch: pytest.MonkeyPatch, dynamo_run: dynamo_test.TestRun
) -> None:
    monkeypatch.setenv("DYNAMO_TEST_DYNAMO_SERVE_BASE", "9100")
    first = dynamo_run.service_ports("first")
    second = dynamo_run.service_ports("second")
    assert first["dynamo_serve_base"] == 9100
    assert 9100 <= first["dynamo_serve"] and 9100 <= second["dynamo_serve"]
    # Both reserved for this test: two numbers.
    assert first["dynamo_serve"] != second["dynamo_serve"]
    assert f"first.dynamo_serve={first['dynamo_serve']}" in dynamo_run.port_table()


def test_service_ports_fixture(service_ports: dict[str, int], dynamo_run: dynamo_test.TestRun) -> None:
    assert list(service_ports) == PLAN_KEYS + ["dynamo_serve"]
    assert service_ports["dynamo_serve"] >= service_ports["dynamo_serve_base"]
    held = [r for r in dynamo_test.reservations() if r["port"] == service_ports["dynamo_serve"]]
    assert held and dynamo_run.name in (held[0]["label"] or "")
