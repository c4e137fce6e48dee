"""The inbound wire format of the chat channel: chat and stop requests, validated.

Inbound payloads are parsed into typed models with limits from the function's settings (the
outbound events are built by :mod:`gateway.outbound`). Parsing never raises anything but
:class:`InvalidRequest`, whatever arrives: JSON nested past the interpreter's recursion limit,
lone UTF-16 surrogates, ids with a trailing newline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.contract import MAX_TURN_ID_CHARS

# Matched with ``fullmatch``: ``$`` would also accept a trailing newline.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
#: Code points that cannot be encoded as UTF-8: a JSON ``\ud800`` escape decodes to one.
SURROGATES = re.compile(r"[\ud800-\udfff]")
#: A field name from a validation error shown back to the client as it is.
_SAFE_LOCATION = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_CONVERSATION_ID_CHARS = 128
MAX_MODEL_ID_CHARS = 256


def printable(text: str) -> str:
    """``text`` with any lone surrogate replaced by U+FFFD, so it can be written as UTF-8 (a
    log line with one would be dropped by the log stream)."""
    return SURROGATES.sub("\ufffd", text)


class TextBlock(BaseModel):
    """One content block; only text is accepted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str

    @field_validator("text")
    @classmethod
    def _valid_unicode(cls, value: str) -> str:
        _require_unicode(value)
        return value


def _require_unicode(value: str) -> None:
    # Nothing downstream can carry a lone surrogate: not UTF-8 (the model, the prepared
    # responses' hash, the logs) and not the Event API, so it is refused at the door.
    if SURROGATES.search(value):
        raise ValueError("is not valid Unicode (it holds a lone UTF-16 surrogate)")


class Message(BaseModel):
    """One Converse-shaped message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant"]
    content: tuple[TextBlock, ...] = Field(min_length=1, max_length=20)

    @property
    def text(self) -> str:
        return "".join(block.text for block in self.content)


class ChatRequest(BaseModel):
    """One inbound chat event (docs/wire.md, "Inbound: one chat turn"). Unknown top-level keys
    are ignored; identity never comes from here."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    conversationId: str = Field(min_length=1, max_length=MAX_CONVERSATION_ID_CHARS)
    turnId: str | None = Field(default=None, min_length=1, max_length=MAX_TURN_ID_CHARS)
    modelId: str | None = Field(default=None, min_length=1, max_length=MAX_MODEL_ID_CHARS)
    messages: tuple[Message, ...] = Field(min_length=1)

    @field_validator("conversationId", "turnId")
    @classmethod
    def _id_characters(cls, value: str | None) -> str | None:
        if value is not None and not _ID.fullmatch(value):
            raise ValueError("may hold only letters, digits and . _ : -")
        return value

    @field_validator("modelId")
    @classmethod
    def _model_unicode(cls, value: str | None) -> str | None:
        if value is not None:
            _require_unicode(value)
        return value

    @field_validator("messages")
    @classmethod
    def _conversation_shape(cls, messages: tuple[Message, ...]) -> tuple[Message, ...]:
        if messages[0].role != "user" or messages[-1].role != "user":
            raise ValueError("must start and end with a user message")
        for earlier, later in zip(messages, messages[1:], strict=False):
            if earlier.role == later.role:
                raise ValueError("must alternate between user and assistant")
        for message in messages:
            if not message.text.strip():
                raise ValueError("every message needs some text")
        return messages


class InvalidRequest(ValueError):
    """A payload that is not a valid chat request; the message is safe to show the client."""


@dataclass(frozen=True)
class RequestLimits:
    max_messages: int
    max_message_chars: int


class StopRequest(BaseModel):
    """A client's request to stop one of its running turns: ``{"action": "stop", "turnId"}``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    action: Literal["stop"]
    turnId: str = Field(min_length=1, max_length=MAX_TURN_ID_CHARS)
    conversationId: str | None = Field(
        default=None, min_length=1, max_length=MAX_CONVERSATION_ID_CHARS
    )

    @field_validator("conversationId", "turnId")
    @classmethod
    def _id_characters(cls, value: str | None) -> str | None:
        if value is not None and not _ID.fullmatch(value):
            raise ValueError("may hold only letters, digits and . _ : -")
        return value


class UsageRequest(BaseModel):
    """A client's request for its tier, models and usage: ``{"action": "usage"}`` (an optional
    ``turnId`` names the answer). No model is called."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    action: Literal["usage"]
    turnId: str | None = Field(default=None, min_length=1, max_length=MAX_TURN_ID_CHARS)

    @field_validator("turnId")
    @classmethod
    def _id_characters(cls, value: str | None) -> str | None:
        if value is not None and not _ID.fullmatch(value):
            raise ValueError("may hold only letters, digits and . _ : -")
        return value


#: The inbound key that makes an event a command other than a chat turn.
ACTION = "action"
_ACTIONS: dict[str, type[StopRequest] | type[UsageRequest]] = {
    "stop": StopRequest,
    "usage": UsageRequest,
}


def parse_inbound(payload: Any, limits: RequestLimits) -> ChatRequest | StopRequest | UsageRequest:
    """Validate one inbound payload: a stop or usage request when it names an ``action``,
    otherwise a chat turn."""
    document = _document(payload)
    if ACTION not in document:
        return parse_chat_request(document, limits)
    action = document.get(ACTION)
    model = _ACTIONS.get(action) if isinstance(action, str) else None
    if model is None:
        raise InvalidRequest('action: must be "stop" or "usage" (or absent for a chat turn).')
    try:
        return model.model_validate(document)
    except ValidationError as err:
        raise InvalidRequest(_describe(err)) from None


def _load(payload: str | bytes) -> Any:
    """``json.loads`` that fails only with :class:`InvalidRequest`. Deep nesting raises
    ``RecursionError`` inside the json module; it is a bad payload like any other."""
    try:
        return json.loads(payload)
    except RecursionError:
        raise InvalidRequest("The event payload is nested too deeply.") from None
    except ValueError:  # also UnicodeDecodeError, and integers past the digit limit
        raise InvalidRequest("The event payload is not JSON.") from None


def _document(payload: Any) -> Mapping[str, Any]:
    if isinstance(payload, str | bytes):
        payload = _load(payload)
    if not isinstance(payload, Mapping):
        raise InvalidRequest("The event payload must be a JSON object.")
    return payload


def parse_chat_request(payload: Any, limits: RequestLimits) -> ChatRequest:
    """Validate one inbound chat payload (a JSON object, or a string holding one)."""
    payload = _document(payload)
    messages = payload.get("messages")
    if isinstance(messages, list) and len(messages) > limits.max_messages:
        raise InvalidRequest(f"messages: at most {limits.max_messages} messages per request.")
    try:
        request = ChatRequest.model_validate(payload)
    except ValidationError as err:
        raise InvalidRequest(_describe(err)) from None
    total = sum(len(m.text) for m in request.messages)
    if total > limits.max_message_chars:
        raise InvalidRequest(
            f"messages: at most {limits.max_message_chars} characters of text per request."
        )
    return request


def _describe(err: ValidationError) -> str:
    first = err.errors(include_url=False, include_input=False)[0]
    # A location may name a key the client sent; only plain names are echoed back.
    where = (
        ".".join(
            str(part) if isinstance(part, int) or _SAFE_LOCATION.fullmatch(part) else "…"
            for part in first.get("loc", ())
        )
        or "payload"
    )
    message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
    return f"{where}: {message}."


def salvage_ids(payload: Any) -> tuple[str | None, str | None]:
    """``(conversationId, turnId)`` of a payload that failed validation, where they are
    themselves valid, so a client can still match the error to its request. Never raises.

    A stop request's ``turnId`` names another turn (the one to stop), so it is never taken as
    the id of the stop's own error."""
    try:
        document = _document(payload)
    except InvalidRequest:
        return None, None

    def valid(value: Any, limit: int) -> str | None:
        ok = isinstance(value, str) and 0 < len(value) <= limit and _ID.fullmatch(value)
        return value if ok else None

    turn_id = None if ACTION in document else valid(document.get("turnId"), MAX_TURN_ID_CHARS)
    return valid(document.get("conversationId"), MAX_CONVERSATION_ID_CHARS), turn_id
