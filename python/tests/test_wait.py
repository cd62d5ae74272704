"""wait_http, wait_etcd, wait_nats, wait_openai_models: the Rust probes,
their backoff and their failure story."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import dynamo_test
from dynamo_test import NotReadyError, wait_http, wait_openai_models


class _Models(BaseHTTPRequestHandler):
    """A model server's /v1/models and /health, listing `server.models`."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/v1/models":
            body = {"object": "list", "data": [{"id": m} for m in self.server.models]}  # type: ignore[attr-defined]
            self._answer(200, json.dumps(body))
        elif self.path == "/health":
            status = 200 if self.server.models else 503  # type: ignore[attr-defined]
            self._answer(status, json.dumps({"status": "healthy" if status == 200 else "starting"}))
        else:
            self._answer(404, "not found")

    def _answer(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def model_server(free_port: int):
    server = ThreadingHTTPServer(("127.0.0.1", free_port), _Models)
    server.models = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{free_port}"
    server.shutdown()
    server.server_close()


def test_wait_http_returns_once_the_server_is_healthy(model_server) -> None:
    server, url = model_server
    # A server that turns healthy on an event of ours: the wait sees it.
    timer = threading.Timer(0.2, lambda: server.models.append("tiny"))
    timer.start()
    elapsed = wait_http(f"{url}/health", 30)
    timer.join()
    assert elapsed >= 0
    assert server.models == ["tiny"]


def test_wait_http_tells_the_story_of_a_failed_wait(model_server) -> None:
    _, url = model_server
    with pytest.raises(NotReadyError) as raised:
        wait_http(f"{url}/health", 2)
    message = str(raised.value)
    assert "timed out waiting for" in message and f"{url}/health" in message
    assert "HTTP 503" in message and "starting" in message
    assert isinstance(raised.value, TimeoutError)


def test_wait_http_on_a_closed_port_says_refused(free_port: int) -> None:
    with pytest.raises(NotReadyError, match="connection refused"):
        wait_http(f"http://127.0.0.1:{free_port}/", 0.3)


def test_wait_http_checks_status_and_body(model_server) -> None:
    server, url = model_server
    server.models.append("m")
    assert wait_http(f"{url}/nope", 5, status=404) >= 0
    with pytest.raises(NotReadyError, match='body lacks "absent"'):
        wait_http(f"{url}/health", 1, contains="absent")
    with pytest.raises(ValueError, match="status must be 100-599, got 70000"):
        wait_http(f"{url}/health", 1, status=70000)


def test_wait_openai_models_waits_for_every_model(model_server) -> None:
    server, url = model_server
    server.models.append("a")
    assert wait_openai_models(url, "a", 5) >= 0
    with pytest.raises(NotReadyError) as raised:
        wait_openai_models(url, ["a", "b"], 1)
    assert 'models missing: ["b"]; listed: ["a"]' in str(raised.value)
    threading.Timer(0.1, lambda: server.models.append("b")).start()
    assert wait_openai_models(url, ["a", "b"], 30) >= 0


def test_a_negative_timeout_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="timeout"):
        wait_http("http://127.0.0.1:1/", -1)


def test_wait_etcd_and_wait_nats_default_to_the_tests_services(etcd, nats) -> None:
    assert dynamo_test.wait_etcd(timeout=10) >= 0
    assert dynamo_test.wait_nats(timeout=10) >= 0


def test_their_defaults_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch, free_port: int
) -> None:
    # Named by the environment (a closed port here): that is what they wait on.
    monkeypatch.setenv("ETCD_ENDPOINTS", f"http://127.0.0.1:{free_port}")
    monkeypatch.setenv("NATS_SERVER", f"nats://127.0.0.1:{free_port}")
    for wait in (dynamo_test.wait_etcd, dynamo_test.wait_nats):
        with pytest.raises(NotReadyError, match=f"127.0.0.1:{free_port}"):
            wait(timeout=0.3)
    monkeypatch.setenv("NATS_SERVER", "localhost:4222")
    with pytest.raises(ValueError, match='NATS_SERVER="localhost:4222"'):
        dynamo_test.wait_nats()


def test_wait_etcd_on_a_closed_port_fails_with_the_story(free_port: int) -> None:
    with pytest.raises(NotReadyError, match="connection refused"):
        dynamo_test.wait_etcd(f"http://127.0.0.1:{free_port}", 0.3)
    with pytest.raises(NotReadyError, match="refused"):
        dynamo_test.wait_nats(f"nats://127.0.0.1:{free_port}", 0.3)
