"""An AppSync-Events-compatible server: the real-time WebSocket protocol and the HTTP publish API.

WebSocket ``/event/realtime`` speaks the ``aws-appsync-event-ws`` subprotocol, authorised by the
``header-<base64url>`` subprotocol: ``connection_init``/``connection_ack``/``ka``, ``subscribe``,
``publish``, ``unsubscribe`` and ``data``. ``POST /event`` publishes up to five events. Each
namespace authorises publish and subscribe with its own modes and runs its handlers — onSubscribe
in request/response mode, onPublish in event mode — with the event shapes AWS uses.

The protocol: https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-websocket-protocol.html
What AWS Amplify JS v6 sends and expects (aws-amplify/amplify-js,
packages/api-graphql/src/Providers/AWSAppSyncEventsProvider/index.ts and
AWSWebSocketProvider/index.ts): subscribe and publish messages carry ``id``, ``channel``,
``authorization`` and, for publish, ``events`` (plus a ``payload`` copy this server ignores);
``data`` frames must carry ``event`` as a JSON string (it calls ``JSON.parse`` on it); a missing
``connectionTimeoutMs`` means 300 000 ms; it reports a keep-alive as missed after 65 s, so ``ka``
comes more often than that; any frame with ``errors`` rejects a pending WebSocket publish; and
``BadRequestException``/``UnauthorizedException`` are not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from local.auth import AuthMode, Authorizer, Caller, Unauthorized, decode_header_subprotocol
from local.channels import Channel, InvalidChannel, Namespace, parse_channel
from local.handlers import FunctionRuntime, SubscribeRefused, appsync_event

log = logging.getLogger("local.events")

PROTOCOL = "aws-appsync-event-ws"
#: "You can publish a maximum of five events in a batch":
#: https://docs.aws.amazon.com/appsync/latest/eventapi/publish-websocket.html and publish-http.html
MAX_EVENTS_PER_PUBLISH = 5
#: "a maximum size of 240 KB per event":
#: https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-concepts.html
MAX_EVENT_BYTES = 240 * 1024
#: The "Subscriptions per connection" quota (default 100) of
#: https://docs.aws.amazon.com/general/latest/gr/appsync.html
MAX_SUBSCRIPTIONS_PER_CONNECTION = 100
CONNECTION_TIMEOUT_MS = 300_000
#: How long a refused connection waits for ``connection_init`` before it is told and closed.
_REFUSAL_WAIT_SECONDS = 5.0


class ApiError(Exception):
    """An error answered in AppSync's shape: ``{"errors": [{"errorType", "message"}]}``."""

    def __init__(self, error_type: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status

    def errors(self) -> list[dict[str, str]]:
        return [{"errorType": self.error_type, "message": self.message}]


def _bad_request(message: str) -> ApiError:
    return ApiError("BadRequestException", message, 400)


def _unauthorized(err: Unauthorized) -> ApiError:
    return ApiError("UnauthorizedException", str(err), 401)


@dataclass(eq=False)
class Connection:
    """One WebSocket client: its subscriptions and an ordered outbox."""

    ws: web.WebSocketResponse
    caller: Caller
    request_headers: dict[str, str]
    source_ip: str
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    subscriptions: dict[str, Channel] = field(default_factory=dict)
    initialised: bool = False

    def send(self, message: Mapping[str, Any]) -> None:
        self.outbox.put_nowait(json.dumps(message))


class EventsApi:
    """The Event API: namespaces, their auth modes and handlers, and the subscribers."""

    def __init__(
        self,
        namespaces: Mapping[str, Namespace],
        authorizer: Authorizer,
        functions: FunctionRuntime,
        *,
        keepalive_seconds: float = 30.0,
    ) -> None:
        self.namespaces = dict(namespaces)
        self.authorizer = authorizer
        self.functions = functions
        self.keepalive_seconds = keepalive_seconds
        self.connections: set[Connection] = set()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/event/realtime", self.realtime)
        app.router.add_post("/event", self.http_publish)
        app.router.add_route("OPTIONS", "/event", self.preflight)

    async def close(self) -> None:
        """Close every WebSocket (going away), as a stopping endpoint does."""
        for connection in list(self.connections):
            with contextlib.suppress(Exception):
                await connection.ws.close(code=1001, message=b"server shutting down")

    # --- publishing (shared by HTTP and WebSocket) -------------------------------------------

    def _namespace(self, channel: Channel) -> Namespace:
        namespace = self.namespaces.get(channel.namespace)
        if namespace is None:
            raise _bad_request(f"Namespace '{channel.namespace}' does not exist")
        return namespace

    async def publish(
        self,
        channel_path: Any,
        events: Any,
        headers: Mapping[str, str],
        *,
        source_ip: str,
        body: bytes,
    ) -> dict[str, list[dict[str, Any]]]:
        try:
            channel = parse_channel(channel_path, allow_wildcard=False)
        except InvalidChannel as err:
            raise _bad_request(str(err)) from None
        namespace = self._namespace(channel)
        try:
            caller = self.authorizer.authorize(
                headers, namespace.publish_auth, source_ip=source_ip, body=body
            )
        except Unauthorized as err:
            raise _unauthorized(err) from None
        payloads = _parse_events(events)

        published = [{"id": str(uuid.uuid4()), "payload": p} for p in payloads]
        for raw in events:
            self._fan_out(channel, raw)
        if namespace.on_publish:
            self.functions.invoke_event(
                namespace.on_publish,
                appsync_event("PUBLISH", channel, caller, headers, events=published),
            )
        return {
            "successful": [{"identifier": e["id"], "index": i} for i, e in enumerate(published)],
            "failed": [],
        }

    def _fan_out(self, channel: Channel, event: str) -> None:
        for connection in self.connections:
            for sub_id, subscribed in connection.subscriptions.items():
                if subscribed.matches(channel):
                    connection.send({"type": "data", "id": sub_id, "event": event})

    # --- HTTP ---------------------------------------------------------------------------------

    async def preflight(self, request: web.Request) -> web.Response:
        return web.Response(status=204)  # the access policy adds CORS for trusted origins

    async def http_publish(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            try:
                document = json.loads(body)
            except (ValueError, RecursionError):
                raise _bad_request("The body is not valid JSON or nests too deeply") from None
            if not isinstance(document, dict):
                raise _bad_request("The request body must be an object {channel, events}")
            result = await self.publish(
                document.get("channel"),
                document.get("events"),
                dict(request.headers),
                source_ip=request.remote or "127.0.0.1",
                body=body,
            )
        except ApiError as err:
            return web.json_response({"errors": err.errors()}, status=err.status)
        return web.json_response(result)

    # --- WebSocket ----------------------------------------------------------------------------

    async def realtime(self, request: web.Request) -> web.StreamResponse:
        offered = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        if PROTOCOL not in offered:
            return web.json_response(
                {
                    "errors": [
                        {
                            "errorType": "BadRequestException",
                            "message": f"The {PROTOCOL} subprotocol is required",
                        }
                    ]
                },
                status=400,
            )
        ws = web.WebSocketResponse(protocols=(PROTOCOL,), max_msg_size=1024 * 1024)
        await ws.prepare(request)
        source_ip = request.remote or "127.0.0.1"
        try:
            header = next((p for p in offered if p.startswith("header-")), None)
            if header is None:
                raise Unauthorized("No authorization subprotocol (header-<base64url>)")
            auth_headers = decode_header_subprotocol(header)
            caller = self.authorizer.authorize(
                auth_headers, frozenset(AuthMode), source_ip=source_ip, body=b"{}"
            )
        except Unauthorized as err:
            # Answer the client's connection_init, so a client that listens only after sending it
            # (as Amplify does) reads the refusal rather than a bare close.
            with contextlib.suppress(TimeoutError):
                await ws.receive(timeout=_REFUSAL_WAIT_SECONDS)
            await ws.send_json({"type": "connection_error", "errors": _unauthorized(err).errors()})
            await ws.close(code=4401, message=b"Unauthorized")
            return ws

        headers = {
            k.lower(): v
            for k, v in request.headers.items()
            if k.lower() not in ("sec-websocket-protocol", "sec-websocket-key")
        }
        connection = Connection(ws=ws, caller=caller, request_headers=headers, source_ip=source_ip)
        self.connections.add(connection)
        writer = asyncio.create_task(self._write(connection))
        keepalive: asyncio.Task[None] | None = None
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    connection.send(_error("BadRequestException", "Messages must be JSON text"))
                    continue
                try:
                    initialised = await self._on_message(connection, message.data)
                except RecursionError:  # a frame that parsed but nests too deeply to re-encode
                    connection.send(_error("BadRequestException", "The message nests too deeply"))
                    continue
                if initialised and keepalive is None:
                    keepalive = asyncio.create_task(self._keepalive(connection))
        finally:
            self.connections.discard(connection)
            for task in (keepalive, writer):
                if task:
                    task.cancel()
        return ws

    async def _write(self, connection: Connection) -> None:
        while True:
            text = await connection.outbox.get()
            try:
                await connection.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _keepalive(self, connection: Connection) -> None:
        while True:
            await asyncio.sleep(self.keepalive_seconds)
            connection.send({"type": "ka"})

    async def _on_message(self, connection: Connection, text: str) -> bool:
        """Handle one client message; True once the connection is initialised."""
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            connection.send(_error("BadRequestException", "Messages must be valid JSON"))
            return connection.initialised
        if not isinstance(message, dict):
            connection.send(_error("BadRequestException", "Messages must be JSON objects"))
            return connection.initialised

        kind = message.get("type")
        if kind == "connection_init":
            first = not connection.initialised
            connection.initialised = True
            connection.send(
                {"type": "connection_ack", "connectionTimeoutMs": CONNECTION_TIMEOUT_MS}
            )
            if first:
                connection.send({"type": "ka"})
        elif kind not in ("subscribe", "publish", "unsubscribe"):
            connection.send(
                _error("UnsupportedOperation", f"{kind} not supported through the realtime channel")
            )
        elif not connection.initialised:
            connection.send(
                _error("BadRequestException", "Send connection_init first", message.get("id"))
            )
        elif not isinstance(message.get("id"), str) or not message["id"]:
            connection.send(
                _error("BadRequestException", f"A {kind} message needs an id", kind=f"{kind}_error")
            )
        elif kind == "subscribe":
            await self._subscribe(connection, message)
        elif kind == "publish":
            await self._publish_ws(connection, message)
        else:
            self._unsubscribe(connection, message["id"])
        return connection.initialised

    def _message_headers(self, connection: Connection, message: dict[str, Any]) -> dict[str, str]:
        authorization = message.get("authorization")
        if not isinstance(authorization, dict):
            raise Unauthorized("The message has no authorization object")
        return {
            **connection.request_headers,
            **{str(k).lower(): str(v) for k, v in authorization.items()},
        }

    async def _subscribe(self, connection: Connection, message: dict[str, Any]) -> None:
        sub_id = message["id"]
        try:
            if sub_id in connection.subscriptions:
                raise _bad_request(f"Subscription id '{sub_id}' is already in use")
            if len(connection.subscriptions) >= MAX_SUBSCRIPTIONS_PER_CONNECTION:
                raise _bad_request(
                    f"A connection holds at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions"
                )
            try:
                channel = parse_channel(message.get("channel"), allow_wildcard=True)
            except InvalidChannel as err:
                raise _bad_request(str(err)) from None
            namespace = self._namespace(channel)
            try:
                headers = self._message_headers(connection, message)
                body = json.dumps({"channel": channel.path}, separators=(",", ":")).encode()
                caller = self.authorizer.authorize(
                    headers, namespace.subscribe_auth, source_ip=connection.source_ip, body=body
                )
            except Unauthorized as err:
                raise _unauthorized(err) from None
            if namespace.on_subscribe:
                event = appsync_event("SUBSCRIBE", channel, caller, headers)
                try:
                    await self.functions.request_response(namespace.on_subscribe, event)
                except SubscribeRefused as err:
                    raise ApiError(err.error_type, err.message, 401) from None
        except ApiError as err:
            connection.send({"type": "subscribe_error", "id": sub_id, "errors": err.errors()})
            return
        connection.subscriptions[sub_id] = channel
        connection.send({"type": "subscribe_success", "id": sub_id})

    async def _publish_ws(self, connection: Connection, message: dict[str, Any]) -> None:
        try:
            try:
                headers = self._message_headers(connection, message)
            except Unauthorized as err:
                raise _unauthorized(err) from None
            body = json.dumps(
                {"channel": message.get("channel"), "events": message.get("events")},
                separators=(",", ":"),
            ).encode()
            result = await self.publish(
                message.get("channel"),
                message.get("events"),
                headers,
                source_ip=connection.source_ip,
                body=body,
            )
        except ApiError as err:
            connection.send({"type": "publish_error", "id": message["id"], "errors": err.errors()})
            return
        connection.send({"type": "publish_success", "id": message["id"], **result})

    def _unsubscribe(self, connection: Connection, sub_id: str) -> None:
        if connection.subscriptions.pop(sub_id, None) is None:
            connection.send(
                _error(
                    "BadRequestException",
                    f"No subscription with id '{sub_id}'",
                    sub_id,
                    kind="unsubscribe_error",
                )
            )
            return
        connection.send({"type": "unsubscribe_success", "id": sub_id})


def _error(
    error_type: str, message: str, op_id: Any = None, *, kind: str = "error"
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": kind}
    if isinstance(op_id, str):
        frame["id"] = op_id
    frame["errors"] = [{"errorType": error_type, "message": message}]
    return frame


def _parse_events(events: Any) -> list[Any]:
    """Each event must be a string holding valid JSON; one to five per publish."""
    if not isinstance(events, list) or not events:
        raise _bad_request("events must be a non-empty list of JSON strings")
    if len(events) > MAX_EVENTS_PER_PUBLISH:
        raise _bad_request(
            f"A publish carries at most {MAX_EVENTS_PER_PUBLISH} events, got {len(events)}"
        )
    payloads = []
    for index, event in enumerate(events):
        if not isinstance(event, str):
            raise _bad_request(f"events[{index}] must be a string containing JSON")
        if len(event.encode()) > MAX_EVENT_BYTES:
            raise _bad_request(f"events[{index}] is larger than {MAX_EVENT_BYTES // 1024} KB")
        try:
            payloads.append(json.loads(event))
        except (ValueError, RecursionError):
            raise _bad_request(f"events[{index}] is not valid JSON or nests too deeply") from None
    return payloads
