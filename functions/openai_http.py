"""The OpenAI-compatible door's HTTP server, run by ``openai_door.sh`` behind the Lambda Web
Adapter (https://github.com/awslabs/aws-lambda-web-adapter).

API Gateway authenticates every request with the Cognito authorizer before the function runs;
the adapter forwards the request to this server with API Gateway's request context, authorizer
claims included, in the ``x-amzn-request-context`` header (adapter guide, "Request & Lambda
Context"), and streams what the server writes back to the client
(``AWS_LWA_INVOKE_MODE=response_stream``).

This module routes and validates: ``POST /v1/chat/completions`` bodies go through
:func:`gateway.openai.wire.parse_chat_completion` (a bad request is refused with OpenAI's 400
envelope before anything is charged) and ``GET /healthz`` answers the adapter's readiness check.
Running the turn is the :class:`Door`'s job; until the door is wired to the turn core it is
:class:`NotWiredDoor`, which answers 501.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from gateway.openai import responses
from gateway.openai.wire import ChatCompletionRequest, OpenAiRequestError, WireLimits
from gateway.openai.wire import parse_chat_completion as parse

HEALTH_PATH = "/healthz"
CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
#: The header the adapter puts API Gateway's request context in.
REQUEST_CONTEXT_HEADER = "x-amzn-request-context"

Write = Callable[[bytes], None]


class Door(Protocol):
    """What runs behind the routes; the turn core's adapter provides it."""

    def chat(
        self,
        request: ChatCompletionRequest,
        context: Mapping[str, Any],
        start: Callable[[int, Mapping[str, str]], Write],
    ) -> None:
        """Answer one validated request: call ``start(status, headers)`` once, then write the
        body (a JSON answer or server-sent events) with the function it returns."""

    def models(self, context: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """``GET /v1/models``: status, headers and body."""


class NotWiredDoor:
    """Refuses every valid request with 501 until the door runs turns through the core."""

    def _error(self) -> responses.OpenAiError:
        return responses.OpenAiError(
            HTTPStatus.NOT_IMPLEMENTED,
            {
                "error": {
                    "message": "The OpenAI-compatible API is not wired to the gateway yet.",
                    "type": "server_error",
                    "param": None,
                    "code": "not_implemented",
                }
            },
        )

    def chat(self, request, context, start) -> None:  # noqa: ANN001 - the Door protocol
        error = self._error()
        start(error.status, {"Content-Type": responses.JSON_CONTENT_TYPE})(error.json_bytes())

    def models(self, context):  # noqa: ANN001, ANN201 - the Door protocol
        error = self._error()
        return error.status, {"Content-Type": responses.JSON_CONTENT_TYPE}, error.json_bytes()


def request_context(headers: Mapping[str, str]) -> dict[str, Any] | None:
    """API Gateway's request context, when it names an authenticated caller (the Cognito
    authorizer's claims hold a ``sub``); ``None`` otherwise."""
    raw = headers.get(REQUEST_CONTEXT_HEADER)
    if not raw:
        return None
    try:
        context = json.loads(raw)
    except ValueError:
        return None
    claims = context.get("authorizer", {}).get("claims") if isinstance(context, dict) else None
    if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
        return None
    return context


def _route(path: str) -> str:
    """The route of ``path``: the adapter passes API Gateway's resource path, and a custom
    domain's base path mapping or a stage name may precede ``/v1``."""
    path = path.split("?", 1)[0].rstrip("/") or "/"
    for route in (CHAT_PATH, MODELS_PATH, HEALTH_PATH):
        if path == route or path.endswith(route):
            return route
    return path


def make_handler(door: Door, limits: WireLimits) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ai-gateway"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # API Gateway's access log records every request

        def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_error(self, error: responses.OpenAiError, *, close: bool = False) -> None:
            headers = {"Content-Type": responses.JSON_CONTENT_TYPE, **error.headers}
            if close:
                headers["Connection"] = "close"
                self.close_connection = True
            self._send(error.status, headers, error.json_bytes())

        def _caller(self) -> dict[str, Any] | None:
            context = request_context(self.headers)
            if context is None:
                self._send_error(responses.error("unauthorized"), close=self.command == "POST")
            return context

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            route = _route(self.path)
            if route == HEALTH_PATH:
                self._send(HTTPStatus.OK, {"Content-Type": "text/plain"}, b"ok")
            elif route == MODELS_PATH:
                context = self._caller()
                if context is not None:
                    self._send(*door.models(context))
            else:
                self._send_error(responses.not_found(self.path))

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if _route(self.path) != CHAT_PATH:
                self._send_error(responses.not_found(self.path), close=True)
                return
            context = self._caller()
            if context is None:
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                length = -1
            if length < 0 or length > limits.body_bytes:
                # The body is not read: refusing before reading keeps a huge body off the
                # function's memory; the connection closes with the answer.
                self._send_error(
                    responses.invalid_request(
                        f"The request body must have a Content-Length of at most "
                        f"{limits.body_bytes} bytes.",
                        None,
                    ),
                    close=True,
                )
                return
            try:
                request = parse(self.rfile.read(length), limits)
            except OpenAiRequestError as refused:
                self._send_error(responses.invalid_request(refused.message, refused.param))
                return

            def start(status: int, headers: Mapping[str, str]) -> Write:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                # Streamed bodies have no length up front: the connection ends the body.
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()

                def write(chunk: bytes) -> None:
                    self.wfile.write(chunk)
                    self.wfile.flush()

                return write

            door.chat(request, context, start)

    return Handler


def serve(
    door: Door | None = None,
    limits: WireLimits | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> ThreadingHTTPServer:
    """A server for ``door`` on ``port`` (``AWS_LWA_PORT``, else ``PORT``, else 8080: the
    adapter's defaults), not yet serving."""
    if port is None:
        port = int(os.environ.get("AWS_LWA_PORT") or os.environ.get("PORT") or 8080)
    if limits is None:
        max_messages = int(os.environ.get("MAX_MESSAGES") or 40)
        max_chars = int(os.environ.get("MAX_MESSAGE_CHARS") or 16_000)
        limits = WireLimits(max_messages=max_messages, max_message_chars=max_chars)
    handler = make_handler(door or NotWiredDoor(), limits)
    return ThreadingHTTPServer((host, port), handler)


if __name__ == "__main__":  # pragma: no cover - the Lambda entry point
    serve().serve_forever()
