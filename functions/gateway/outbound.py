"""The chat channel's outbound events, typed: what a client reads on its ``/replies/<sub>``.

Each body is built here in a fixed key order, so what a client sees is exactly what these
builders return plus the ``type``/``conversationId``/``turnId``/``seq`` header the relay adds
(:func:`with_header`). :func:`terminal_body` renders the turn core's outcome in this format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict, cast

from gateway.contract import RETRYABLE, ErrorCode, EventType, default_message
from gateway.turn_io import LimitsView, TurnDone, TurnFailed, TurnOutcome
from gateway.usage_report import UsageReport


class UsageView(TypedDict):
    inputTokens: int
    outputTokens: int


class DeltaBody(TypedDict):
    type: str
    text: str


class DoneBody(TypedDict):
    type: str
    stopReason: str
    modelId: str
    usage: UsageView
    cached: bool
    limits: LimitsView
    provider: NotRequired[str]
    costUsd: NotRequired[float]


class ErrorBody(TypedDict):
    type: str
    code: str
    message: str
    retryable: bool
    requestId: str
    window: NotRequired[str]
    resetsAt: NotRequired[str | None]
    limits: NotRequired[LimitsView]
    limit: NotRequired[str]
    duplicateOf: NotRequired[str]
    needed: NotRequired[int | float]
    remaining: NotRequired[int | float]


class UsageBody(TypedDict):
    type: str
    tier: str
    models: list[str]
    defaultModel: str
    limits: LimitsView


#: The body of one outbound event (before its header).
OutboundBody = DeltaBody | DoneBody | ErrorBody | UsageBody


def delta_body(text: str) -> DeltaBody:
    return {"type": EventType.DELTA.value, "text": text}


def done_body(
    *,
    stop_reason: str,
    model_id: str,
    input_tokens: int,
    output_tokens: int,
    cached: bool,
    limits: LimitsView,
    provider: str | None = None,
    cost_usd: float | None = None,
) -> DoneBody:
    body: DoneBody = {
        "type": EventType.DONE.value,
        "stopReason": stop_reason,
        "modelId": model_id,
        "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens},
        "cached": cached,
        "limits": _copy(limits),
    }
    if provider:
        body["provider"] = provider
    if cost_usd is not None:
        body["costUsd"] = cost_usd
    return body


def error_body(
    code: ErrorCode,
    request_id: str,
    message: str | None = None,
    *,
    window: str | None = None,
    resets_at: str | None = None,
    limits: LimitsView | None = None,
) -> ErrorBody:
    body: ErrorBody = {
        "type": EventType.ERROR.value,
        "code": code.value,
        "message": message or default_message(code),
        "retryable": code in RETRYABLE,
        "requestId": request_id,
    }
    if window is not None:
        body["window"] = window
        if resets_at is not None or code is ErrorCode.LIMIT_EXCEEDED:
            body["resetsAt"] = resets_at
    if limits is not None:
        body["limits"] = _copy(limits)
    return body


def terminal_body(outcome: TurnOutcome, request_id: str) -> DoneBody | ErrorBody:
    """The ``done`` or ``error`` event of a turn's outcome."""
    if isinstance(outcome, TurnDone):
        return done_body(
            stop_reason=outcome.stop_reason,
            model_id=outcome.model_id,
            input_tokens=outcome.usage.input_tokens,
            output_tokens=outcome.usage.output_tokens,
            cached=outcome.cached,
            limits=outcome.limits,
            provider=outcome.provider,
            cost_usd=outcome.cost_usd,
        )
    return failure_body(outcome, request_id)


def failure_body(failure: TurnFailed, request_id: str) -> ErrorBody:
    body = error_body(
        failure.code,
        request_id,
        failure.message,
        window=failure.window,
        resets_at=failure.resets_at,
        limits=failure.limits,
    )
    extra: dict[str, Any] = dict(body)
    extra.update(failure.fields)  # ErrorBody's optional keys (limit, resetsAt, duplicateOf)
    return cast(ErrorBody, extra)


def usage_body(report: UsageReport) -> UsageBody:
    """The ``usage`` event answering a usage request."""
    return {
        "type": EventType.USAGE.value,
        "tier": report.tier,
        "models": list(report.models),
        "defaultModel": report.default_model,
        "limits": _copy(report.limits),
    }


def with_header(
    body: Mapping[str, Any], conversation_id: str | None, turn_id: str, seq: int
) -> dict[str, Any]:
    """The full outbound event: header first, then the body."""
    event: dict[str, Any] = {
        "type": body["type"],
        "conversationId": conversation_id,
        "turnId": turn_id,
        "seq": seq,
    }
    event.update((k, v) for k, v in body.items() if k != "type")
    return event


def _copy(limits: LimitsView) -> LimitsView:
    return {k: {"used": v["used"], "allowed": v["allowed"]} for k, v in limits.items()}
