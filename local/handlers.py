"""Runs the gateway's Lambda handlers in-process, with the event shapes AppSync Events sends.

Handlers are imported once and reused across invocations, like warm Lambdas. ``EVENT`` invocations
each get a daemon thread (so a stopping gateway never waits for a long answer to finish streaming),
bounded like a function's reserved concurrency; ``REQUEST_RESPONSE`` invocations run on a thread
and their outcome is awaited.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.auth import Caller
from local.channels import Channel

log = logging.getLogger("local.handlers")

Handler = Callable[[dict[str, Any], Any], Any]

#: Handler name → ``module:function`` under ``functions/``.
HANDLERS = {"chat": "chat:handler", "subscribe": "subscribe:handler"}


@dataclass
class LambdaContext:
    """The parts of the Lambda context object Powertools and the handlers read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_seconds: int = 300
    region: str = "us-east-1"
    account_id: str = "123456789012"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    client_context: Any = None
    identity: Any = None
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[{self.function_version}]{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


def appsync_event(
    operation: str,
    channel: Channel,
    caller: Caller,
    headers: Mapping[str, str],
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The event an AppSync Events namespace handler receives for one operation."""
    return invocation(
        operation,
        channel.to_event_info(),
        channel.namespace,
        caller.identity,
        {"headers": {k.lower(): v for k, v in headers.items()}, "domainName": None},
        events,
    )


def invocation(
    operation: str,
    channel: Any,
    namespace: Any,
    identity: Any,
    request: dict[str, Any],
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The invocation document itself, for whatever ``info.channel``, namespace and identity it
    is given (the tests hand handlers hostile ones)."""
    event: dict[str, Any] = {
        "identity": identity,
        "result": None,
        "request": request,
        "info": {
            "channel": channel,
            "channelNamespace": {"name": namespace},
            "operation": operation,
        },
        "error": None,
        "prev": None,
        "stash": {},
        "outErrors": [],
    }
    if events is not None:
        event["events"] = events
    return event


class SubscribeRefused(Exception):
    """An onSubscribe handler refused the subscription."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class FunctionRuntime:
    """The gateway's functions, loaded once and invoked the way AppSync invokes them."""

    def __init__(
        self,
        *,
        stack: str,
        region: str,
        account_id: str,
        max_concurrency: int = 32,
        loader: Callable[[str], Handler] | None = None,
    ) -> None:
        self.stack = stack
        self.region = region
        self.account_id = account_id
        self._loader = loader or _import_handler
        self._handlers: dict[str, Handler] = {}
        self._slots = threading.BoundedSemaphore(max_concurrency)

    def load(self, *names: str) -> None:
        """Import the named handlers now (a cold start at startup, not on the first message)."""
        for name in names:
            self._handlers[name] = self._loader(name)

    def _context(self, name: str) -> LambdaContext:
        return LambdaContext(
            function_name=f"ai-gateway-{self.stack}-{name}",
            region=self.region,
            account_id=self.account_id,
        )

    async def request_response(self, name: str, event: dict[str, Any]) -> Any:
        """Invoke and await; an ``UnauthorizedException`` (or ``{"error": ...}``) is a refusal."""
        handler = self._handlers[name]
        try:
            result = await asyncio.to_thread(handler, event, self._context(name))
        except Exception as err:
            if type(err).__name__ == "UnauthorizedException":
                raise SubscribeRefused("UnauthorizedException", str(err) or "Unauthorized") from err
            log.exception("%s handler failed", name)
            raise SubscribeRefused("InternalFailure", "The handler failed") from err
        if isinstance(result, dict) and result.get("error"):
            raise SubscribeRefused("UnauthorizedException", str(result["error"]))
        return result

    def invoke_event(self, name: str, event: dict[str, Any]) -> None:
        """Invoke asynchronously and ignore the result (AppSync's EVENT mode)."""
        handler = self._handlers[name]
        context = self._context(name)

        def run() -> None:
            with self._slots:
                try:
                    handler(event, context)
                except Exception:
                    log.exception("%s handler failed (request %s)", name, context.aws_request_id)

        threading.Thread(
            target=run, name=f"{name}-{context.aws_request_id[:8]}", daemon=True
        ).start()


def _import_handler(name: str) -> Handler:
    module_name, _, attr = HANDLERS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise RuntimeError(
            f"functions/{module_name}.py is missing; the local gateway runs the real handlers"
        ) from err
    return getattr(module, attr)
