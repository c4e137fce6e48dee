"""The one builder of AppSync Events invocations in the tests, and their Lambda context.

Tests hand handlers hostile shapes on purpose (a path that is not a string, no segments, segments
that contradict the path), so the builder takes whatever it is given; it fills in the document
the local gateway fills in for the channels it has validated (:func:`local.handlers.invocation`).
"""

from __future__ import annotations

from typing import Any

from local.handlers import LambdaContext, invocation

#: The ``request`` AppSync Events sends with an invocation.
REQUEST = {"headers": {"host": "example.appsync-api.us-east-1.amazonaws.com"}}
_DERIVE: Any = object()


def appsync_event(
    operation: str,
    path: Any,
    identity: Any,
    *,
    events: list[dict[str, Any]] | None = None,
    segments: Any = _DERIVE,
    namespace: str | None = None,
) -> dict[str, Any]:
    """The event AppSync Events hands a DIRECT Lambda handler for ``operation`` (PUBLISH or
    SUBSCRIBE) on ``path``: ``segments`` and ``namespace`` are derived from ``path`` unless
    given; publish events carry their ``events`` list."""
    if segments is _DERIVE:
        segments = path.strip("/").split("/")
    return invocation(
        operation,
        {"path": path, "segments": segments},
        namespace or path.strip("/").split("/")[0],
        identity,
        {"headers": dict(REQUEST["headers"])},
        events,
    )


def lambda_context(request_id: str = "req-0001", function_name: str = "chat") -> LambdaContext:
    """The Lambda context of one invocation, as the local gateway gives its handlers."""
    return LambdaContext(function_name=function_name, aws_request_id=request_id)
