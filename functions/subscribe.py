"""onSubscribe handler of the outbound namespace: a user may subscribe only to their own channel.

AppSync invokes it (DIRECT, REQUEST_RESPONSE) for every subscribe to ``/<outbound>/...``; it
returns nothing to allow the subscription and raises ``UnauthorizedException`` to refuse it.
"""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import AppSyncEventsResolver
from aws_lambda_powertools.event_handler.events_appsync.exceptions import UnauthorizedException
from gateway.access import caller_from_identity, owns_channel
from gateway.environment import FunctionEnvironment
from gateway.routing import ROUTING_LOCK

logger = Logger()
app = AppSyncEventsResolver()

# Set by authorise_subscription when it allows a subscription. Powertools allows a subscription
# whose path no route matches without calling any handler, so anything not explicitly allowed
# by the ownership check is refused: deny by default.
_checked = threading.local()


@app.on_subscribe("/*")
def authorise_subscription() -> None:
    event = app.current_event
    info = event.get("info") or {}
    channel = info.get("channel") or {}
    path = channel.get("path")
    caller = caller_from_identity(event.get("identity"))
    namespace = FunctionEnvironment.from_environ().outbound_namespace
    if caller is None or not owns_channel(caller, namespace, path, channel.get("segments")):
        logger.warning(
            "subscription refused",
            extra={"channel": str(path)[:200], "user": caller.sub if caller else None},
        )
        raise UnauthorizedException("You may subscribe only to your own channel")
    logger.debug("subscription allowed", extra={"channel": path, "user": caller.sub})
    _checked.allowed = True


def handler(event: dict[str, Any], context: Any) -> Any:
    """Allow (return ``None``) or refuse (raise ``UnauthorizedException``) one subscription."""
    if not isinstance(event, dict) or not isinstance(event.get("info"), dict):
        raise UnauthorizedException("You may subscribe only to your own channel")
    channel = event["info"].get("channel")
    path = channel.get("path") if isinstance(channel, dict) else None
    if not isinstance(path, str):
        raise UnauthorizedException("You may subscribe only to your own channel")
    with ROUTING_LOCK:
        _checked.allowed = False
        result = app.resolve(event, context)
        allowed = _checked.allowed
    if not allowed:  # a path no route matched (no leading slash, a newline inside, ...)
        logger.warning("subscription refused: unroutable channel", extra={"channel": path[:200]})
        raise UnauthorizedException("You may subscribe only to your own channel")
    return result
