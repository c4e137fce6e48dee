"""A loopback stand-in for the AppSync Events HTTP publish endpoint that records what it receives.

It answers ``POST /event`` as AWS does (``successful`` / ``failed`` per event), counts HTTP
requests and the TCP connections they arrive on, and can be told to fail: answer 5xx for the next
N requests, or for good. The benchmarks count with it; the robustness suites read from it what a
user would have seen on each channel.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class PublishedEvent:
    """One event as a subscriber of ``channel`` would receive it."""

    channel: str
    payload: Any
    connection: int
    received_at: float


@dataclass
class _Faults:
    fail_next: int = 0
    fail_forever: bool = False
    status: int = 503


@dataclass
class PublishSink:
    """Records publishes; start() returns the ``http://127.0.0.1:<port>/event`` URL."""

    require_sigv4: bool = True
    #: Seconds each publish is held before its answer (after its arrival is recorded): an
    #: in-region round trip the loopback does not have.
    latency: float = 0.0
    #: Serve HTTPS with this context instead of HTTP (a design that opens a TLS connection per
    #: publish then pays for the handshakes it makes).
    tls: Any = None
    events: list[PublishedEvent] = field(default_factory=list)
    requests: int = 0
    connections: int = 0
    refused_requests: int = 0
    unsigned_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _faults: _Faults = field(default_factory=_Faults)
    _server: ThreadingHTTPServer | None = None

    # -- control -----------------------------------------------------------------------------
    def start(self) -> str:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
            disable_nagle_algorithm = True  # headers and body leave as they are written

            def setup(self) -> None:
                if sink.tls is not None:
                    self.request.do_handshake()
                super().setup()
                with sink._lock:
                    sink.connections += 1
                    self.connection_id = sink.connections

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - the control endpoint of a remote sink
                self._reply(200, sink.state(int(self.path.rpartition("since=")[2] or 0)))

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if self.path.startswith("/_sink/"):
                    self._reply(200, sink.control(self.path, json.loads(body or b"{}")))
                    return
                status, answer = sink._answer(self.path, self.headers, body, self.connection_id)
                if sink.latency:
                    time.sleep(sink.latency)
                self._reply(status, answer)

            def _reply(self, status: int, answer: Any) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            # The handshake runs in each connection's own thread (setup), not in the accept loop.
            self._server.socket = self.tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}/event"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` publish requests with ``status`` and accept none of them."""
        with self._lock:
            self._faults = _Faults(fail_next=count, status=status)

    def fail_forever(self, status: int = 500) -> None:
        with self._lock:
            self._faults = _Faults(fail_forever=True, status=status)

    def recover(self) -> None:
        with self._lock:
            self._faults = _Faults()

    def reset(self) -> None:
        with self._lock:
            self.events.clear()
            self.requests = self.connections = self.refused_requests = 0
            self.unsigned_requests = 0
            self._faults = _Faults()

    def control(self, path: str, order: dict[str, Any]) -> dict[str, Any]:
        """Remote control: ``/_sink/fail_next``, ``/_sink/fail_forever``, ``/_sink/recover``,
        ``/_sink/reset``, ``/_sink/latency`` (``{"ms": n}`` per publish)."""
        action = path.rsplit("/", 1)[-1]
        if action == "fail_next":
            self.fail_next(int(order.get("count", 1)), int(order.get("status", 503)))
        elif action == "fail_forever":
            self.fail_forever(int(order.get("status", 500)))
        elif action == "recover":
            self.recover()
        elif action == "reset":
            self.reset()
        elif action == "latency":
            self.latency = float(order.get("ms", 0)) / 1000
        return {"ok": True}

    def state(self, since: int = 0) -> dict[str, Any]:
        """Counters and the events received after the first ``since`` (for a remote reader)."""
        with self._lock:
            return {
                "requests": self.requests,
                "connections": self.connections,
                "refused_requests": self.refused_requests,
                "unsigned_requests": self.unsigned_requests,
                "event_count": len(self.events),
                "events": [
                    [e.channel, e.payload, e.connection, e.received_at] for e in self.events[since:]
                ],
            }

    # -- reading -----------------------------------------------------------------------------
    def channel_events(self, channel: str) -> list[Any]:
        with self._lock:
            return [e.payload for e in self.events if e.channel == channel]

    def channels(self) -> set[str]:
        with self._lock:
            return {e.channel for e in self.events}

    def snapshot(self) -> list[PublishedEvent]:
        with self._lock:
            return list(self.events)

    # -- serving -----------------------------------------------------------------------------
    def _answer(
        self, path: str, headers: Any, body: bytes, connection: int
    ) -> tuple[int, dict[str, Any]]:
        now = time.perf_counter()
        with self._lock:
            self.requests += 1
            if self.require_sigv4 and not str(headers.get("authorization", "")).startswith(
                "AWS4-HMAC-SHA256"
            ):
                self.unsigned_requests += 1
                return 401, {"errors": [{"errorType": "UnauthorizedException"}]}
            faults = self._faults
            if faults.fail_forever or faults.fail_next > 0:
                if faults.fail_next > 0:
                    faults.fail_next -= 1
                self.refused_requests += 1
                return faults.status, {"errors": [{"errorType": "ServiceUnavailable"}]}
        if path.rstrip("/") != "/event":
            return 404, {"errors": [{"errorType": "NotFound"}]}
        try:
            request = json.loads(body)
            channel = request["channel"]
            raw_events = request["events"]
            if not isinstance(raw_events, list) or not 1 <= len(raw_events) <= 5:
                raise ValueError("1 to 5 events per publish")
            payloads = [json.loads(e) for e in raw_events]
        except (ValueError, KeyError, TypeError) as err:
            return 400, {"errors": [{"errorType": "BadRequestException", "message": str(err)}]}
        channel = channel if channel.startswith("/") else f"/{channel}"
        with self._lock:
            for payload in payloads:
                self.events.append(PublishedEvent(channel, payload, connection, now))
        return 200, {
            "successful": [
                {"identifier": f"{connection}-{i}", "index": i} for i in range(len(payloads))
            ],
            "failed": [],
        }
