"""The OpenAI-compatible door's HTTP server, run by ``openai_door.sh`` behind the Lambda Web
Adapter (https://github.com/awslabs/aws-lambda-web-adapter).

API Gateway authenticates every request with the Cognito authorizer before the function runs;
the adapter forwards the request to this server with API Gateway's request context, authorizer
claims included, in the ``x-amzn-request-context`` header (adapter docs, "Request & Lambda
Context": "This is forwarded in the ``x-amzn-request-context`` header as a JSON string"), and
streams what the server writes back to the client (``AWS_LWA_INVOKE_MODE=response_stream``).

This module only routes: ``POST /v1/chat/completions`` and ``GET /v1/models`` go to the door
(:class:`gateway.openai.door.OpenAiDoor`, which refuses a missing caller or a bad body itself, so
each refusal is counted and recorded like the chat channel's), and ``GET /healthz`` answers the
adapter's readiness check. A body over the size cap is never read.
"""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

from gateway.openai import responses
from gateway.openai.door import Reply
from gateway.openai.identity import context_from_header
from gateway.openai.output import ResponseStream
from gateway.openai.wire import WireLimits

if TYPE_CHECKING:
    from gateway.ports import TurnLog

HEALTH_PATH = "/healthz"
CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
#: The header the adapter puts API Gateway's request context in.
REQUEST_CONTEXT_HEADER = "x-amzn-request-context"


class Door(Protocol):
    """What runs behind the routes (:class:`gateway.openai.door.OpenAiDoor`)."""

    def chat(
        self, context: Mapping[str, Any] | None, body: bytes | None, stream: ResponseStream
    ) -> object:
        """Answer one request on ``stream`` (``body`` None: over the size cap, unread)."""
        ...

    def models(self, context: Mapping[str, Any] | None) -> Reply:
        """``GET /v1/models``."""
        ...


def _route(path: str) -> str:
    """The route of ``path``: the adapter passes API Gateway's resource path, and a custom
    domain's base path mapping or a stage name may precede ``/v1``."""
    path = path.split("?", 1)[0].rstrip("/") or "/"
    for route in (CHAT_PATH, MODELS_PATH, HEALTH_PATH):
        if path == route or path.endswith(route):
            return route
    return path


class _HandlerStream:
    """A :class:`ResponseStream` on one ``http.server`` request. The body's length is not known
    up front (a streamed answer), so the connection closes after it."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self._handler = handler

    def start(self, status: int, headers: Mapping[str, str]) -> None:
        handler = self._handler
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Connection", "close")
        handler.close_connection = True
        handler.end_headers()

    def write(self, chunk: bytes) -> None:
        self._handler.wfile.write(chunk)
        self._handler.wfile.flush()

    def gone(self) -> bool:
        """The peer closed its end: the socket reads as ready and holds nothing."""
        connection = self._handler.connection
        try:
            readable, _, _ = select.select([connection], [], [], 0)
            return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True


def make_handler(door: Door, limits: WireLimits) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ai-gateway"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # API Gateway's access log records every request

        def _reply(self, reply: Reply, *, close: bool = False) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(reply.body)

        def _context(self) -> Mapping[str, Any] | None:
            return context_from_header(self.headers.get(REQUEST_CONTEXT_HEADER))

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            route = _route(self.path)
            if route == HEALTH_PATH:
                self._reply(Reply(HTTPStatus.OK, {"Content-Type": "text/plain"}, b"ok"))
            elif route == MODELS_PATH:
                self._reply(door.models(self._context()))
            else:
                self._reply(Reply.of_error(responses.not_found(self.path)))

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if _route(self.path) != CHAT_PATH:
                self._reply(Reply.of_error(responses.not_found(self.path)), close=True)
                return
            door.chat(self._context(), self._body(), _HandlerStream(self))

        def _body(self) -> bytes | None:
            """The body, or None (unread) when its length is missing or over the cap: refusing
            before reading keeps a huge body off the function's memory; the connection closes
            with the answer."""
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                length = -1
            if length < 0 or length > limits.body_bytes:
                self.close_connection = True
                return None
            return self.rfile.read(length)

    return Handler


def serve(
    door: Door | None = None,
    limits: WireLimits | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> ThreadingHTTPServer:
    """A server for ``door`` (by default the one built from the function's environment) on
    ``port`` (``AWS_LWA_PORT``, else ``PORT``, else 8080: the adapter's defaults), not yet
    serving."""
    if port is None:
        port = int(os.environ.get("AWS_LWA_PORT") or os.environ.get("PORT") or 8080)
    if limits is None:
        max_messages = int(os.environ.get("MAX_MESSAGES") or 40)
        max_chars = int(os.environ.get("MAX_MESSAGE_CHARS") or 16_000)
        limits = WireLimits(max_messages=max_messages, max_message_chars=max_chars)
    handler = make_handler(door or _door_from_environment(), limits)
    return ThreadingHTTPServer((host, port), handler)


def turn_log() -> TurnLog:
    """The door's turn log: Powertools' JSON lines on stdout, as the chat function writes them,
    so each turn's ``turn finished`` line carries the same fields and the stack's saved Logs
    Insights queries read both functions' turns. (Without it the core logs through the standard
    library's root logger, which drops ``INFO`` lines and prints the rest without their fields.)
    """
    from aws_lambda_powertools import Logger

    return Logger()


def _door_from_environment() -> Door:
    """The door on this function's turn core (built lazily: no AWS client before a turn)."""
    from gateway.environment import FunctionEnvironment
    from gateway.openai.clients import machine_client_tiers
    from gateway.runtime import runtime_for

    runtime = runtime_for(FunctionEnvironment.from_environ(), log=turn_log())
    return runtime.openai_door(machine_client_tiers())


if __name__ == "__main__":  # pragma: no cover - the Lambda entry point
    serve().serve_forever()
