"""``ioc api`` as a real process against an attacker and a process manager (issue 16).

* A body over its limit is refused (413) before the key is checked and without being read: an anonymous
  2 GiB body, announced by Content-Length or sent chunked, is answered within seconds, after a few MiB.
* No key reaches the log: the stream is read with the key in a header, and a client that still puts a
  key in the URL gets a 401 and a redacted access log line.
* SIGTERM with open streams stops the process within 5 s.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from ioc.settings import unnamed_key_name
from tests.conftest import TEST_KEYS, free_port
from tests.processes import IocProcess, wait_for

pytestmark = pytest.mark.integration

GIB = 1024**3
MIB = 1024**2
OPERATOR = {"X-API-Key": TEST_KEYS["operator"]}
INTEGRATOR = {"X-API-Key": TEST_KEYS["integrator"]}


def api_process(settings, tmp_path, **env) -> tuple[IocProcess, int]:
    port = free_port()
    api = IocProcess(["api", "--port", str(port)], settings, tmp_path / "api.log", **env)
    wait_for(
        lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200, timeout=30, processes=[api]
    )
    return api, port


@dataclass
class Answer:
    head: bytes  # the status line and headers
    body: bytes
    seconds: float  # from the first byte sent until the answer's head came
    sent: int  # body bytes sent by then
    closed: bool  # the server closed the connection after its answer

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])


def post_huge(
    port: int, path: str, size: int, *, chunked: bool, headers: dict[str, str] | None = None
) -> Answer:
    """POST ``size`` bytes of body to ``path`` (announced in Content-Length, or chunked without one) from a
    thread, while this one waits for the answer; the sender stops when the server answers or closes."""
    sock = socket.create_connection(("127.0.0.1", port))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{extra}{framing}\r\n\r\n"
    block = b"1" * (64 * 1024)
    piece = f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block
    sent = 0
    answered = threading.Event()

    def send() -> None:
        nonlocal sent
        try:
            sock.sendall(head.encode())
            while sent < size and not answered.is_set():
                sock.sendall(piece)
                sent += len(block)
        except OSError:
            pass  # the server closed the connection: what a refused body should get

    started = time.monotonic()
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    sock.settimeout(60)
    received = b""
    try:
        while b"\r\n\r\n" not in received and (data := sock.recv(65536)):
            received += data
        seconds, sent_by_then = time.monotonic() - started, sent
        answered.set()
        sock.settimeout(5)
        closed = False
        try:
            while data := sock.recv(65536):
                received += data
            closed = True
        except OSError:
            closed = True  # reset: closed too
    finally:
        answered.set()
        sock.close()
        sender.join(10)
    head, _, body = received.partition(b"\r\n\r\n")
    return Answer(head, body, seconds, sent_by_then, closed)


def test_a_2_gib_anonymous_body_is_refused_at_once_unread_on_every_route_that_takes_one(settings, tmp_path):
    api, port = api_process(settings, tmp_path)
    try:
        for path, setting in [
            ("/v1/silences", "IOC_API_MAX_BODY_BYTES"),
            ("/v1/alerts/some-alert/ack", "IOC_API_MAX_BODY_BYTES"),
            ("/v1/alerts/some-alert/resolve", "IOC_API_MAX_BODY_BYTES"),
            ("/v1/ingest/air", "IOC_INGEST_MAX_BODY_BYTES"),
            ("/v1/ngsi-ld/notify", "IOC_INGEST_MAX_BODY_BYTES"),
        ]:
            for chunked, key in [(False, {}), (True, {}), (True, INTEGRATOR)]:
                answer = post_huge(port, path, 2 * GIB, chunked=chunked, headers=key)
                what = f"{path} {'chunked' if chunked else 'Content-Length'} {key}: {answer}"
                # The ingest routes read their body after the key check: an anonymous chunked body (its size
                # unknown until read) is refused unread, with a 401. The others parse it before the check.
                ingest = path.startswith(("/v1/ingest/", "/v1/ngsi-ld/"))
                expected = 401 if ingest and chunked and not key else 413
                assert answer.status == expected, what
                assert expected != 413 or setting.encode() in answer.body, what
                assert answer.seconds < 5, what
                # Announced: nothing need be read. Chunked: the limit (10 MiB for ingest), and what the
                # sockets' buffers hold.
                assert answer.sent < 48 * MIB, what
                assert answer.closed, what
            api.check_alive()
        # The answer names the setting; with a key the limit is the same.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            refused = http.post("/v1/silences", content=b"x" * (65 * 1024), headers=OPERATOR)
            assert refused.status_code == 413
            assert refused.json() == {
                "detail": "the body is larger than 65536 bytes (IOC_API_MAX_BODY_BYTES)"
            }
            # Under the limits, anonymous: the key check answers, as before.
            assert http.post("/v1/silences", json={}).status_code == 401
            # 100 KiB is over the control routes' limit, well under ingest's.
            assert http.post("/v1/ingest/air", content=b"[" + b" " * 100_000 + b"]").status_code == 401
            doc = http.get("/openapi.json").json()["paths"]
            assert "IOC_API_MAX_BODY_BYTES" in doc["/v1/silences"]["post"]["responses"]["413"]["description"]
            assert "413" not in doc["/v1/picture"]["get"]["responses"]
    finally:
        api.stop()


def test_a_stream_opened_by_the_console_s_way_leaves_no_key_in_the_log(settings, tmp_path):
    api, port = api_process(settings, tmp_path)
    key = TEST_KEYS["operator"]
    try:
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
            http.stream("GET", "/v1/stream", headers=OPERATOR) as response,
        ):
            assert response.status_code == 200
            assert next(response.iter_lines()).startswith("retry:")
        # A client that still sends the key in the URL is refused, and its URL is logged without it.
        refused = httpx.get(f"http://127.0.0.1:{port}/v1/stream", params={"key": key, "lastEventId": "1-0"})
        assert refused.status_code == 401
    finally:
        api.stop()
    log = api.log_file.read_text()
    assert '"GET /v1/stream HTTP/1.1" 200' in log  # the access log is on
    assert '"GET /v1/stream?key=***&lastEventId=1-0 HTTP/1.1" 401' in log
    assert key not in log


def open_stream(port: int) -> tuple[httpx.Client, httpx.Response, Iterator[str]]:
    """A stream, read up to its snapshot; and the iterator of its further lines."""
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=OPERATOR)
    response = client.send(client.build_request("GET", "/v1/stream"), stream=True)
    assert response.status_code == 200
    lines = response.iter_lines()
    while not next(lines).startswith("event: snapshot"):
        pass
    return client, response, lines


def test_sigterm_with_open_streams_stops_the_api_within_5_s(settings, tmp_path):
    api, port = api_process(settings, tmp_path)
    streams = [open_stream(port) for _ in range(3)]
    try:
        started = time.monotonic()
        os.kill(api.process.pid, signal.SIGTERM)
        code = api.process.wait(timeout=30)
        seconds = time.monotonic() - started
        assert code == -signal.SIGTERM  # uvicorn re-raises the signal once it has shut down
        assert seconds < 5, f"stopped {seconds:.1f} s after SIGTERM"
        for _, _, lines in streams:
            for _line in lines:  # each stream was ended (a killed server would break the read)
                pass
    finally:
        api.stop()
        for client, response, _ in streams:
            response.close()
            client.close()
    log = api.log_file.read_text()
    # The lifespan's clean-up ran and no request was cancelled: the streams ended on their own.
    assert "Application shutdown complete" in log and "Cancel" not in log, log


def test_a_key_holds_at_most_its_cap_of_open_streams(settings, tmp_path):
    api, port = api_process(settings, tmp_path, stream_max_per_key=2)
    admin = {"X-API-Key": TEST_KEYS["admin"]}
    held = [open_stream(port) for _ in range(2)]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            with http.stream("GET", "/v1/stream", headers=OPERATOR) as third:  # not read to its end
                assert third.status_code == 429 and third.headers["Retry-After"] == "30"
                assert json.loads(third.read())["detail"] == (
                    f"key {unnamed_key_name('operator', TEST_KEYS['operator'])} already holds 2 open streams "
                    "(IOC_STREAM_MAX_PER_KEY); close one"
                )
            with http.stream("GET", "/v1/stream", headers=admin) as other_key:
                assert other_key.status_code == 200  # the cap is per key
            # A stream closed by its client gives its place back.
            client, response, _ = held.pop()
            response.close()
            client.close()
            wait_for(lambda: _stream_status(http) == 200, timeout=10, processes=[api])
    finally:
        for client, response, _ in held:
            response.close()
            client.close()
        api.stop()


def _stream_status(http: httpx.Client) -> int:
    with http.stream("GET", "/v1/stream", headers=OPERATOR) as response:
        return response.status_code


def test_the_console_forbids_inline_scripts_foreign_content_and_framing(settings, tmp_path):
    api, port = api_process(settings, tmp_path)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            for path in ("/", "/console/console.js", "/console/console.css"):
                response = http.get(path)
                assert response.status_code == 200, path
                policy = dict(
                    directive.strip().split(" ", 1)
                    for directive in response.headers["Content-Security-Policy"].split(";")
                )
                assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'", path
                assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'", path  # no inline
                assert response.headers["X-Content-Type-Options"] == "nosniff", path
                assert response.headers["X-Frame-Options"] == "DENY", path
            page = http.get("/").text
            assert "<script" in page and "<script>" not in page and "style=" not in page  # nothing inline
    finally:
        api.stop()
