"""The values of one model call: the request, the stream's parts, and how a call fails.

A provider (:mod:`gateway.providers`) yields :class:`TextDelta` parts followed by exactly one
:class:`Completion`, or raises :class:`ModelFailure` carrying a wire error code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from gateway.contract import ErrorCode
from gateway.tiers import Guardrail
from gateway.usage import TokenUsage


@dataclass(frozen=True)
class ModelRequest:
    """One model call: Converse-shaped messages and the most output it may produce, plus the
    optional system prompt and sampling settings a door may pass through."""

    model_id: str
    messages: tuple[dict[str, Any], ...]
    max_tokens: int
    guardrail: Guardrail | None = None
    system: tuple[str, ...] = ()
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: tuple[str, ...] = ()

    def with_model(self, model_id: str) -> ModelRequest:
        """The same call to another model (a fallback)."""
        return replace(self, model_id=model_id)

    def texts(self) -> list[str]:
        """The text of each message the request sends, system prompt first."""
        found = list(self.system)
        for message in self.messages:
            found.append(
                "".join(str(block.get("text", "")) for block in message.get("content", ()))
            )
        return found


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Completion:
    stop_reason: str
    usage: TokenUsage


class ModelFailure(Exception):
    """A model call that failed; ``code`` is the wire error code it maps to."""

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        super().__init__(f"{code.value}: {detail}" if detail else code.value)
        self.code = code
