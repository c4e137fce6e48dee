"""What the door sends back, shaped exactly as OpenAI's API sends it, so the official SDKs (and
LiteLLM, LangChain and every other OpenAI client) parse it unchanged.

The shapes are those of the official ``openai`` Python package's response types
(https://github.com/openai/openai-python: ``types/chat/chat_completion.py``,
``types/chat/chat_completion_chunk.py``, ``types/completion_usage.py``, ``types/model.py``) and of
OpenAI's streaming reference (https://platform.openai.com/docs/api-reference/chat-streaming):

* a non-streamed answer is one ``chat.completion`` object;
* a streamed answer is server-sent events, each ``data: <chat.completion.chunk>`` and a blank
  line: a first chunk whose delta carries ``role: "assistant"``, one chunk per piece of text,
  a last chunk with an empty delta and the ``finish_reason``, then - only when the request set
  ``stream_options.include_usage`` - a chunk with ``usage`` and an empty ``choices`` array
  (every earlier chunk then carries ``"usage": null``;
  ``types/chat/chat_completion_stream_options_param.py``), and finally ``data: [DONE]``;
* an error is ``{"error": {"message", "type", "param", "code"}}`` with an HTTP status the SDKs
  turn into their error classes (``openai/_client.py``, ``_make_status_error``: 400
  ``BadRequestError``, 401 ``AuthenticationError``, 403 ``PermissionDeniedError``, 429
  ``RateLimitError``, >= 500 ``InternalServerError``). An error after the stream has started is
  one ``data: {"error": {...}}`` event, which the SDKs raise as ``APIError``
  (``openai/_streaming.py``).

``code`` carries the gateway's own error code (``gateway.contract.ErrorCode``:
``model_not_allowed``, ``limit_exceeded``...), so a client sees the same code through either door.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.contract import ErrorCode

#: A turn too large for the tier to ever admit (added to the core's error codes with the door).
TURN_TOO_LARGE = "turn_too_large"

DONE_LINE = b"data: [DONE]\n\n"
SSE_CONTENT_TYPE = "text/event-stream"
JSON_CONTENT_TYPE = "application/json"
OWNED_BY = "ai-gateway"

#: Bedrock's ``stopReason`` (ConverseStream's ``messageStop``:
#: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_MessageStopEvent.html)
#: as OpenAI's ``finish_reason`` (``chat_completion.py``: ``stop`` for a natural stop point or a
#: stop sequence, ``length`` for the token limit, ``content_filter`` for content omitted by a
#: filter). A context window that ran out stopped the answer for length, as OpenAI reports it.
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}


def finish_reason(stop_reason: str | None) -> str:
    """OpenAI's ``finish_reason`` for a Bedrock ``stopReason`` (``stop`` for anything else: the
    gateway asks for no tools, so ``tool_use`` cannot end a turn it ran)."""
    return FINISH_REASONS.get(stop_reason or "", "stop")


def completion_id() -> str:
    """A fresh completion id, ``chatcmpl-`` and 32 hex digits, as OpenAI's ids look."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    """``CompletionUsage``: the turn's tokens as metered."""
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def chat_completion(
    *,
    id: str,
    created: int,
    model: str,
    text: str,
    stop_reason: str | None,
    input_tokens: int,
    output_tokens: int,
) -> dict[str, Any]:
    """The body of a non-streamed answer (``ChatCompletion``)."""
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(stop_reason),
            }
        ],
        "usage": usage(input_tokens, output_tokens),
    }


def sse(event: Mapping[str, Any]) -> bytes:
    """One server-sent event carrying ``event`` as JSON."""
    return (
        b"data: " + json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    )


@dataclass
class ChunkStream:
    """The events of one streamed answer, in order: :meth:`start`, :meth:`delta` per piece of
    text, :meth:`finish`, then :meth:`end` (the usage chunk when asked for, and ``[DONE]``).

    ``created`` and ``id`` are the same on every chunk, as OpenAI's are."""

    model: str
    created: int
    include_usage: bool = False
    id: str = field(default_factory=completion_id)

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None
        chunk.update(extra)
        return sse(chunk)

    def _choice(self, delta: dict[str, Any], reason: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]

    def start(self) -> bytes:
        """The first chunk: the assistant's role and no text yet."""
        return self._chunk(self._choice({"role": "assistant", "content": ""}))

    def delta(self, text: str) -> bytes:
        """A piece of the answer's text."""
        return self._chunk(self._choice({"content": text}))

    def finish(self, stop_reason: str | None) -> bytes:
        """The last chunk of the choice: an empty delta and why the answer ended."""
        return self._chunk(self._choice({}, finish_reason(stop_reason)))

    def end(self, input_tokens: int, output_tokens: int) -> bytes:
        """The usage chunk (only if the request asked for it) and ``data: [DONE]``."""
        if not self.include_usage:
            return DONE_LINE
        return self._chunk([], usage=usage(input_tokens, output_tokens)) + DONE_LINE


def models_list(model_ids: Iterable[str], created: int = 0) -> dict[str, Any]:
    """The body of ``GET /v1/models``: the caller's tier's models (``types/model.py``).
    ``created`` is the same for every model; Bedrock model ids carry no creation time."""
    return {
        "object": "list",
        "data": [
            {"id": model_id, "object": "model", "created": created, "owned_by": OWNED_BY}
            for model_id in model_ids
        ],
    }


# --- errors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorMapping:
    status: int
    type: str
    message: str


#: The gateway's error codes as OpenAI statuses and ``type`` values. OpenAI's error codes
#: (https://platform.openai.com/docs/guides/error-codes) report a bad key as 401, a request the
#: account may not make as 403, both "Rate limit reached" and "You exceeded your current quota"
#: as 429, and its own failures as 500, or 503 "The engine is currently overloaded".
#:
#: * ``model_throttled`` (Bedrock's ThrottlingException or ServiceUnavailableException) is the
#:   provider being overloaded, not the caller's limit: 503, as OpenAI reports its engine's
#:   overload, so 429 always means "your own rate or window" (the issue: "5xx only for provider
#:   failures"). The SDKs retry both 429 and >= 500 (``_base_client.py``, ``_should_retry``).
#: * ``turn_too_large`` is a turn that could never fit the tier (its bound exceeds a whole
#:   window): retrying cannot help, so it is a 400 with ``param: "messages"``, the way OpenAI
#:   reports a prompt past the context window (``context_length_exceeded``,
#:   ``invalid_request_error``, ``param: "messages"``), not a 429 the SDKs would retry.
ERRORS: dict[str, ErrorMapping] = {
    ErrorCode.INVALID_REQUEST: ErrorMapping(
        400, "invalid_request_error", "The request is not valid."
    ),
    TURN_TOO_LARGE: ErrorMapping(
        400,
        "invalid_request_error",
        "This request is larger than your tier's token windows can ever admit; shorten the "
        "messages or lower max_tokens.",
    ),
    ErrorCode.UNAUTHORIZED: ErrorMapping(
        401, "authentication_error", "Missing or invalid bearer token."
    ),
    ErrorCode.MODEL_NOT_ALLOWED: ErrorMapping(
        403, "permission_error", "That model is not available on your tier."
    ),
    # A blocked account (gateway.blocks) may not make any request: 403, like a model outside the
    # tier, and not retried by the SDKs.
    ErrorCode.ACCOUNT_BLOCKED: ErrorMapping(
        403, "permission_error", "This account is blocked; contact the service's operator."
    ),
    ErrorCode.DUPLICATE_TURN: ErrorMapping(
        409, "invalid_request_error", "That turn is already running."
    ),
    ErrorCode.RATE_LIMITED: ErrorMapping(
        429, "rate_limit_error", "Rate limit reached for requests; please retry later."
    ),
    ErrorCode.LIMIT_EXCEEDED: ErrorMapping(
        429, "insufficient_quota", "You have reached a token limit of your tier."
    ),
    ErrorCode.INTERNAL_ERROR: ErrorMapping(
        500, "server_error", "Something went wrong on our side; please retry."
    ),
    ErrorCode.MODEL_ERROR: ErrorMapping(
        502, "server_error", "The model could not complete the answer; please retry."
    ),
    ErrorCode.USAGE_UNAVAILABLE: ErrorMapping(
        503, "server_error", "Your usage could not be checked right now; please retry soon."
    ),
    ErrorCode.MODEL_THROTTLED: ErrorMapping(
        503, "server_error", "The model is busy right now; please retry in a moment."
    ),
    ErrorCode.MODEL_TIMEOUT: ErrorMapping(
        504, "server_error", "The model took too long to answer; please retry."
    ),
}


@dataclass(frozen=True)
class OpenAiError:
    """An error response: status, headers and the ``{"error": {...}}`` body."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def json_bytes(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()

    def sse_bytes(self) -> bytes:
        """The same error as one event of a stream already under way."""
        return sse(self.body)


def retry_after_value(seconds: float) -> str:
    """``Retry-After`` in whole seconds, rounded up and at least 1 (RFC 9110 section 10.2.3:
    a non-negative decimal integer of seconds)."""
    if not math.isfinite(seconds):
        seconds = 1
    return str(max(1, math.ceil(seconds)))


def error(
    code: ErrorCode | str,
    message: str | None = None,
    *,
    param: str | None = None,
    retry_after_seconds: float | None = None,
) -> OpenAiError:
    """The response for the gateway error ``code``. ``retry_after_seconds`` (when the window or
    rate limit that refused the turn says when it frees up) becomes ``Retry-After``."""
    key = code.value if isinstance(code, ErrorCode) else code
    mapping = ERRORS.get(key, ERRORS[ErrorCode.INTERNAL_ERROR])
    if key not in ERRORS:
        key = ErrorCode.INTERNAL_ERROR.value
    if key == TURN_TOO_LARGE and param is None:
        param = "messages"
    headers: dict[str, str] = {}
    if retry_after_seconds is not None:
        headers["Retry-After"] = retry_after_value(retry_after_seconds)
    body = {
        "error": {
            "message": message or mapping.message,
            "type": mapping.type,
            "param": param,
            "code": key,
        }
    }
    return OpenAiError(mapping.status, body, headers)


def invalid_request(message: str, param: str | None) -> OpenAiError:
    """A 400 for a request the wire layer refused (``gateway.openai.wire.OpenAiRequestError``)."""
    return error(ErrorCode.INVALID_REQUEST, message, param=param)


def not_found(path: str) -> OpenAiError:
    """A 404 for a path the door does not serve (OpenAI answers unknown URLs the same way)."""
    return OpenAiError(
        404,
        {
            "error": {
                "message": f"Unknown request URL: {path}.",
                "type": "invalid_request_error",
                "param": None,
                "code": "unknown_url",
            }
        },
    )
