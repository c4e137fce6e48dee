"""What a Chat Completions request becomes once it is validated: frozen, Converse-shaped values
(see :mod:`gateway.openai.wire` for how a body is parsed into them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: Stop sequences OpenAI accepts per request (``completion_create_params.py``: "Up to 4").
MAX_STOP_SEQUENCES = 4
MAX_MODEL_CHARS = 256
MAX_USER_CHARS = 256
MAX_STOP_SEQUENCE_CHARS = 256
#: Bytes a body may take per character of text: the costliest is a character outside the Basic
#: Multilingual Plane written as an escaped surrogate pair (``\ud83d\ude00``, 12 bytes).
_BYTES_PER_CHAR = 12
#: Room for the JSON around the text: keys, roles, parameters.
_ENVELOPE_BYTES = 16 * 1024
_BYTES_PER_MESSAGE = 256


def body_limit(max_messages: int, max_message_chars: int) -> int:
    """The largest body a request within the text limits can need, in bytes."""
    return max_message_chars * _BYTES_PER_CHAR + max_messages * _BYTES_PER_MESSAGE + _ENVELOPE_BYTES


@dataclass(frozen=True)
class WireLimits:
    """The door's request limits; the text limits are the stack's ``maxMessages`` and
    ``maxMessageChars``, the same as the Event API's."""

    max_messages: int = 40
    max_message_chars: int = 16_000
    max_body_bytes: int | None = None  # None: body_limit(max_messages, max_message_chars)

    @property
    def body_bytes(self) -> int:
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return body_limit(self.max_messages, self.max_message_chars)


class OpenAiRequestError(ValueError):
    """A request the door refuses with 400; ``message`` is safe to show the client and ``param``
    names the parameter at fault (``None`` when the body as a whole is)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class ConverseMessage:
    """One Converse message: a role and its text."""

    role: Literal["user", "assistant"]
    text: str

    def to_converse(self) -> dict[str, Any]:
        return {"role": self.role, "content": [{"text": self.text}]}


@dataclass(frozen=True)
class InferenceConfig:
    """Converse's ``inferenceConfig``; ``None`` leaves a setting to the model's default."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: tuple[str, ...] = ()

    def to_converse(self) -> dict[str, Any]:
        """The ``inferenceConfig`` argument of ``converse_stream`` (only what was set)."""
        config: dict[str, Any] = {}
        if self.max_tokens is not None:
            config["maxTokens"] = self.max_tokens
        if self.temperature is not None:
            config["temperature"] = self.temperature
        if self.top_p is not None:
            config["topP"] = self.top_p
        if self.stop_sequences:
            config["stopSequences"] = list(self.stop_sequences)
        return config


@dataclass(frozen=True)
class ChatCompletionRequest:
    """A validated Chat Completions request, in Converse's terms."""

    model: str
    #: The system (and developer) messages' text, in order: Converse's ``system`` blocks.
    system: tuple[str, ...]
    #: Starts and ends with a user message; roles alternate.
    messages: tuple[ConverseMessage, ...]
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    stream: bool = False
    #: ``stream_options.include_usage``: end the stream with a usage chunk.
    include_usage: bool = False
    #: The caller's end-user id (``user``, or ``safety_identifier``), for analytics only.
    user: str | None = None

    @property
    def text_chars(self) -> int:
        """Characters of text in the request: system and messages."""
        return sum(len(s) for s in self.system) + sum(len(m.text) for m in self.messages)

    def converse_messages(self) -> list[dict[str, Any]]:
        return [m.to_converse() for m in self.messages]

    def converse_system(self) -> list[dict[str, str]]:
        return [{"text": text} for text in self.system]
