"""onPublish handler of the inbound namespace: runs each published chat turn (docs/wire.md).

AppSync invokes it asynchronously (DIRECT, EVENT mode) and ignores what it returns, so every
answer — deltas, ``done``, ``error`` — is published by the turn itself to the caller's outbound
channel. This module is glue: route the AppSync event, hand each published event (a chat turn
or a stop request) to :class:`gateway.turn.ChatTurns`, one at a time and each on its own, keep
the log context per invocation.

Under Lambda SnapStart its hooks (``gateway.snapstart``) do a first turn's one-time work before
the snapshot — the clients, the tier document, the tracer — and refresh after each restore what
a snapshot must not carry; without SnapStart they never run and that work waits for the first
turn, as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import AppSyncEventsResolver
from gateway import snapstart
from gateway.environment import FunctionEnvironment
from gateway.events_door import InboundEvent, inbound_events
from gateway.routing import ROUTING_LOCK
from gateway.runtime import Runtime, runtime_for
from gateway.tracing import LazyTracer

logger = Logger()
# Powertools Tracer, built on the first traced invocation (see gateway.tracing for why).
tracer = LazyTracer()
app = AppSyncEventsResolver()


@app.on_publish("/*", aggregate=True)
def accept_published_events(payload: list[dict[str, Any]]) -> list[InboundEvent]:
    """Capture each published event with the identity and channel AppSync authenticated."""
    return inbound_events(app.current_event.raw_event, app.context.get("request_id", ""))


def route(event: Any, context: Any, request_id: str) -> list[InboundEvent]:
    """The published events of one invocation, routed by Powertools."""
    if not isinstance(event, dict) or not isinstance(event.get("info"), dict):
        logger.warning("not an AppSync Events invocation; ignored")
        return []
    routed: Any = None
    with ROUTING_LOCK:
        try:
            app.append_context(request_id=request_id)
            routed = app.resolve(event, context)
        except Exception:
            # Whatever the router tripped on, each event still gets its answer below.
            logger.exception("routing failed; events taken from the invocation as sent")
        finally:
            app.clear_context()
    accepted = routed.get("events") if isinstance(routed, dict) else None
    published = [e for e in accepted or () if isinstance(e, InboundEvent)]
    if not published and event.get("events"):
        # A channel path no route pattern matches (one with a newline, say) still gets its
        # answer: each event is refused as not published to the caller's own channel.
        published = inbound_events(event, request_id)
    return published


def make_handler(runtime: Runtime | None = None) -> Callable[[dict[str, Any], Any], None]:
    """A Lambda handler over ``runtime`` (by default the one built from the environment)."""

    @tracer.capture_lambda_handler
    def handle(event: dict[str, Any], context: Any) -> None:
        request_id = str(getattr(context, "aws_request_id", "") or uuid.uuid4())
        logger.thread_safe_append_keys(correlation_id=request_id)
        try:
            published = route(event, context, request_id)
            if published:
                service = runtime or runtime_for(FunctionEnvironment.from_environ(), log=logger)
                door = service.events_door(logger)
                for inbound in published:
                    # One event's failure never costs the events after it their turn.
                    try:
                        door.handle(inbound)
                    except Exception:
                        logger.exception("chat event failed")
        except Exception:
            # Each turn ends itself with a terminal event; only a malformed invocation or a
            # broken configuration gets here. Raising would make Lambda retry the asynchronous
            # invocation and repeat whatever did get through.
            logger.exception("chat invocation failed")
        finally:
            logger.thread_safe_clear_keys()

    return handle


def _runtime() -> Runtime:
    return runtime_for(FunctionEnvironment.from_environ(), log=logger)


def before_snapshot() -> None:
    """SnapStart's init work: the whole first-turn setup, and the X-Ray tracer where it records.

    A failure here is logged, not raised: the snapshot is then taken without that work and the
    first turn does it, as on a function without SnapStart."""
    try:
        _ = tracer.tracer
        _runtime().prime(logger)
    except Exception:
        logger.exception("first-turn setup not done before the snapshot")


def after_restore() -> None:
    """SnapStart's restore work (:meth:`gateway.runtime.Runtime.after_restore`)."""
    _runtime().after_restore()


handler = make_handler()
snapstart.register(before_snapshot, after_restore)
