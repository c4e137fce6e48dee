"""The OpenAI-compatible door: Chat Completions requests in, the turn core's answers out.

It does only what is particular to this door, as :mod:`gateway.events_door` does for the chat
channel: the caller from the authorizer's claims (:mod:`gateway.openai.identity`), the body's
parsing (:mod:`gateway.openai.wire`), and the answer as a Chat Completions response
(:mod:`gateway.openai.output`). Admission, metering, prepared responses, guardrails, fallback,
the record — everything else — is the core's, on the same usage item as the chat channel's turns.

Both servers use it: the Lambda's HTTP server behind the Web Adapter (``functions/openai_http.py``)
and ``make dev`` (``local/openai_api.py``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.access import Caller
from gateway.contract import ErrorCode, new_turn_id
from gateway.openai import responses
from gateway.openai.identity import caller_from_claims, claims_of
from gateway.openai.output import HttpTurnOutput, ResponseStream, error_for, send_error
from gateway.openai.wire import (
    ChatCompletionRequest,
    OpenAiRequestError,
    WireLimits,
    parse_chat_completion,
)
from gateway.ports import TurnLog
from gateway.telemetry import TurnRecord
from gateway.turn import ChatTurns
from gateway.turn_io import OPENAI_DOOR, ChatMessage, Sampling, TurnFailed, TurnRequest


@dataclass(frozen=True)
class Reply:
    """A whole response: status, headers and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def of_error(cls, error: responses.OpenAiError) -> Reply:
        headers = {"Content-Type": responses.JSON_CONTENT_TYPE, **error.headers}
        return cls(error.status, headers, error.json_bytes())


@dataclass(frozen=True)
class OpenAiDoorSettings:
    limits: WireLimits
    #: App client id -> tier of each machine client (``MACHINE_CLIENT_TIERS``).
    machine_tiers: Mapping[str, str] = field(default_factory=dict)


class OpenAiDoor:
    """``POST /v1/chat/completions`` and ``GET /v1/models`` on the turn core."""

    def __init__(
        self,
        core: ChatTurns,
        settings: OpenAiDoorSettings,
        log: TurnLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = core
        self.settings = settings
        self._log = log
        self._clock = clock

    def caller(self, context: Mapping[str, Any] | None) -> Caller | None:
        """The authenticated caller of a request context (``None``: refuse with 401)."""
        return caller_from_claims(claims_of(context), self.settings.machine_tiers)

    def chat(
        self,
        context: Mapping[str, Any] | None,
        body: bytes | None,
        stream: ResponseStream,
    ) -> TurnRecord | None:
        """Answer one request on ``stream``; ``body`` is ``None`` when the server refused to read
        a body over the size cap. Never raises; returns the turn's record (``None`` when there is
        no caller to charge)."""
        caller = self.caller(context)
        if caller is None:
            self.core.dropped(ErrorCode.UNAUTHORIZED, OPENAI_DOOR)
            send_error(stream, responses.error(ErrorCode.UNAUTHORIZED))
            return None
        request_id = _request_id(context)
        turn_id = new_turn_id()
        try:
            parsed = self._parse(body)
        except OpenAiRequestError as err:
            failure = TurnFailed(
                ErrorCode.INVALID_REQUEST, err.message, fields={"param": err.param}
            )
            output = HttpTurnOutput(stream, model="", streamed=False, clock=self._clock)
            return self.core.refuse(
                caller, failure, output, request_id=request_id, turn_id=turn_id, door=OPENAI_DOOR
            )
        output = HttpTurnOutput(
            stream,
            model=parsed.model,
            streamed=parsed.stream,
            include_usage=parsed.include_usage,
            clock=self._clock,
        )
        return self.core.run(turn_request(caller, parsed, request_id, turn_id), output)

    def models(self, context: Mapping[str, Any] | None) -> Reply:
        """The caller's tier's models (no model call; at most one read of the usage item)."""
        caller = self.caller(context)
        if caller is None:
            return Reply.of_error(responses.error(ErrorCode.UNAUTHORIZED))
        report = self.core.usage(caller)
        if isinstance(report, TurnFailed):
            return Reply.of_error(error_for(report, self._clock()))
        body = responses.models_list(report.models)
        return Reply(
            200,
            {"Content-Type": responses.JSON_CONTENT_TYPE},
            json.dumps(body, separators=(",", ":")).encode(),
        )

    def _parse(self, body: bytes | None) -> ChatCompletionRequest:
        limits = self.settings.limits
        if body is None:
            raise OpenAiRequestError(
                f"The request body must have a Content-Length of at most {limits.body_bytes} bytes."
            )
        return parse_chat_completion(body, limits)


def turn_request(
    caller: Caller, parsed: ChatCompletionRequest, request_id: str, turn_id: str
) -> TurnRequest:
    """The core's request for a validated Chat Completions request. OpenAI's API has no turn id
    of its own, so the turn is never idempotent (``client_turn_id`` is None): each request is a
    new turn, as each OpenAI request is billed anew."""
    inference = parsed.inference
    return TurnRequest(
        caller=caller,
        door=OPENAI_DOOR,
        request_id=request_id,
        turn_id=turn_id,
        client_turn_id=None,
        conversation_id=None,
        model_id=parsed.model,
        messages=tuple(ChatMessage(m.role, (m.text,)) for m in parsed.messages),
        system=parsed.system,
        sampling=Sampling(
            max_tokens=inference.max_tokens,
            temperature=inference.temperature,
            top_p=inference.top_p,
            stop=inference.stop_sequences,
        ),
    )


def _request_id(context: Mapping[str, Any] | None) -> str:
    """API Gateway's request id (in its access log too), else a fresh one."""
    found = context.get("requestId") if isinstance(context, Mapping) else None
    return found if isinstance(found, str) and found else str(uuid.uuid4())
