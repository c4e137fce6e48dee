"""The OpenAI-compatible API under ``/v1`` on ``make dev``'s port, run by the same door as on AWS.

On AWS, API Gateway's Cognito authorizer checks the bearer token before the function runs and
the Lambda Web Adapter hands the door the token's claims in the request context
(``functions/openai_http.py``). Here this module plays both parts: it verifies the token against
the local user pool the way the authorizer does for a method with OAuth scopes — an **access
token** only, signed by the pool, unexpired, from one of the pool's app clients (ID tokens are
refused, as on AWS) — and hands :class:`gateway.openai.door.OpenAiDoor` a context of the same
shape (``{"requestId", "authorizer": {"claims"}}``).

Each request's turn runs on a daemon thread of its own, bounded like a function's concurrency
(a stopping gateway never waits for an answer to finish, as with the chat handler); its answer
streams through :class:`aiohttp.web.StreamResponse` as the model produces it. A client that
disconnects makes the next write fail, and the door tells the core, which stops the model.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web
from gateway.openai.door import OpenAiDoor, Reply

from local.auth import CognitoVerifier, Unauthorized

log = logging.getLogger("local.openai")
_T = TypeVar("_T")

#: How long one write to a client may take before the client is taken for gone.
WRITE_TIMEOUT_SECONDS = 30.0


class _AioStream:
    """The door's ``ResponseStream`` on an aiohttp response, written from the turn's thread."""

    def __init__(
        self, request: web.Request, response: web.StreamResponse, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._request = request
        self._response = response
        self._loop = loop
        self.started = False

    def _call(self, make: Callable[[], Any]) -> None:
        async def run() -> None:
            await make()

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        try:
            future.result(WRITE_TIMEOUT_SECONDS)
        except TimeoutError as err:
            future.cancel()
            raise ConnectionError("the client stopped reading") from err
        except RuntimeError as err:  # aiohttp: the connection is gone ("Connection lost")
            raise ConnectionError(str(err)) from err

    def start(self, status: int, headers: Mapping[str, str]) -> None:
        self.started = True
        self._response.set_status(status)
        self._response.headers.update(headers)
        self._call(lambda: self._response.prepare(self._request))

    def write(self, chunk: bytes) -> None:
        self._call(lambda: self._response.write(chunk))

    def gone(self) -> bool:
        transport = self._request.transport
        return transport is None or transport.is_closing()


class OpenAiApi:
    """``GET /v1/models`` and ``POST /v1/chat/completions`` on the gateway's own port."""

    def __init__(
        self,
        verifier: CognitoVerifier,
        client_ids: Callable[[], frozenset[str]],
        door: Callable[[], OpenAiDoor],
        *,
        max_concurrency: int = 32,
    ) -> None:
        self._verifier = verifier
        self._client_ids = client_ids
        self._door = door
        self._slots = threading.BoundedSemaphore(max_concurrency)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.chat)

    def _context(self, request: web.Request) -> dict[str, Any] | None:
        """The request context API Gateway would pass: the verified token's claims."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        try:
            claims = self._verifier.verify_access_token(header, self._client_ids())
        except Unauthorized as err:
            log.info("openai request refused: %s", err)
            return None
        return {"requestId": str(uuid.uuid4()), "authorizer": {"claims": claims}}

    async def models(self, request: web.Request) -> web.Response:
        context = self._context(request)
        reply: Reply = await self._in_thread(self._door().models, context)
        return web.Response(body=reply.body, status=reply.status, headers=reply.headers)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        context = self._context(request)
        door = self._door()
        body: bytes | None = None
        length = request.content_length
        if length is not None and length <= door.settings.limits.body_bytes:
            body = await request.read()
        response = web.StreamResponse()
        if body is None:
            # Not read: the connection closes after the answer, as the Lambda's server does.
            response.force_close()
        stream = _AioStream(request, response, asyncio.get_running_loop())
        await self._in_thread(door.chat, context, body, stream)
        if stream.started and not stream.gone():
            await response.write_eof()
        return response

    async def _in_thread(self, work: Callable[..., _T], *args: Any) -> _T:
        """``work(*args)`` on a daemon thread, holding one of the concurrency slots."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[_T] = loop.create_future()

        def settle(result: _T | None, error: BaseException | None) -> None:
            if done.cancelled():
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)  # type: ignore[arg-type]

        def run() -> None:
            with self._slots:
                try:
                    result = work(*args)
                except BaseException as err:  # handed to the awaiting request
                    loop.call_soon_threadsafe(settle, None, err)
                    return
            loop.call_soon_threadsafe(settle, result, None)

        threading.Thread(target=run, name="openai-turn", daemon=True).start()
        return await done
