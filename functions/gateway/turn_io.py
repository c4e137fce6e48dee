"""What a door hands the turn core, and what the core hands back.

A door (the AppSync Events channel, the OpenAI-compatible HTTP API) parses its own input into a
:class:`TurnRequest` and renders the :data:`TurnOutcome` in its own format; nothing in between
knows which door a turn came through, except as a dimension of its metrics and record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from gateway.access import Caller
from gateway.contract import ErrorCode
from gateway.usage import TokenUsage

#: The doors a turn can come through (a dimension of metrics and analytics).
EVENTS_DOOR = "events"
OPENAI_DOOR = "openai"


class WindowView(TypedDict):
    """One window of a ``limits`` object: what is used and what the tier allows."""

    used: int | float
    allowed: int | float


#: ``{window: {"used", "allowed"}}`` for every window of the caller's tier.
LimitsView = dict[str, WindowView]


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation: its role and its text blocks (Converse-shaped)."""

    role: str
    texts: tuple[str, ...]

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def to_converse(self) -> dict[str, Any]:
        return {"role": self.role, "content": [{"text": t} for t in self.texts]}


@dataclass(frozen=True)
class Sampling:
    """Optional settings a door passes through to the model."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class TurnRequest:
    """One turn as the core runs it, whatever door it came through."""

    caller: Caller
    door: str
    request_id: str
    #: The id the turn's events carry: the client's, or one the gateway made.
    turn_id: str
    #: The client's own id, which makes the turn idempotent (None: the gateway made ``turn_id``).
    client_turn_id: str | None
    conversation_id: str | None
    model_id: str | None
    messages: tuple[ChatMessage, ...]
    system: tuple[str, ...] = ()
    sampling: Sampling = field(default_factory=Sampling)

    @property
    def prompt(self) -> str:
        return self.messages[-1].text if self.messages else ""


@dataclass(frozen=True)
class TurnDone:
    """A turn answered in full (or stopped by its user, or cut at the tier's maximum)."""

    stop_reason: str
    model_id: str
    usage: TokenUsage
    cached: bool
    limits: LimitsView
    provider: str | None = None
    #: What the turn cost in US dollars (None: its model has no price).
    cost_usd: float | None = None


@dataclass(frozen=True)
class TurnFailed:
    """A turn ended by an error: its stable code, a message for humans, and what a client needs
    to act on it (the window and when it resets, the limits, a rate limit's name...)."""

    code: ErrorCode
    message: str | None = None
    window: str | None = None
    resets_at: str | None = None
    limits: LimitsView | None = None
    #: Further fields of the error event (``limit``, ``resetsAt``, ``duplicateOf``...).
    fields: Mapping[str, Any] = field(default_factory=dict)
    #: The turn id to answer under instead of the request's (a duplicate's answer must not
    #: join the original turn's events).
    answer_turn_id: str | None = None


TurnOutcome = TurnDone | TurnFailed


class TurnRefused(Exception):
    """Ends a turn early with ``failure``."""

    def __init__(self, failure: TurnFailed, *, store_failures: int = 0) -> None:
        super().__init__(failure.code.value)
        self.failure = failure
        #: Usage-store failures met on the way (counted in the turn's metrics).
        self.store_failures = store_failures


def refused(code: ErrorCode, message: str | None = None, **details: Any) -> TurnRefused:
    """A :class:`TurnRefused` for ``code`` (``details`` are :class:`TurnFailed`'s fields)."""
    return TurnRefused(TurnFailed(code, message, **details))
