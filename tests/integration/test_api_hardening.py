"""``ioc api`` as a real process against an attacker and a process manager (issue 16).

* A body over its limit is refused (413) before the key is checked and without being read: an anonymous
  2 GiB body, announced by Content-Length or sent chunked, is answered within seconds, after a few MiB.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import httpx
import pytest

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
