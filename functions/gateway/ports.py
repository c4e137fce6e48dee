"""Every port of the turn core: what it asks of the world, as typed protocols.

The core (:mod:`gateway.turn` and its steps) depends on these and on plain values only. Adapters
implement them — DynamoDB (:mod:`gateway.usage_store`), Bedrock and the local model
(:mod:`gateway.providers`), SSM (:mod:`gateway.runtime`), Firehose and EMF
(:mod:`gateway.telemetry`) — and each door supplies its own :class:`TurnOutput`: the AppSync
Events relay (:mod:`gateway.events_door`), or an HTTP response stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gateway.model import Completion, ModelRequest, TextDelta
from gateway.prepared import PreparedResponse
from gateway.tiers import TierConfig
from gateway.usage import CountedConversation, Reservation, TokenUsage, UsageSnapshot

if TYPE_CHECKING:
    from gateway.metering import Admission
    from gateway.telemetry import TurnCounters, TurnRecord
    from gateway.turn_io import TurnOutcome


# -- configuration and time -----------------------------------------------------------------


class TierSource(Protocol):
    """The current tier configuration (cached by the adapter)."""

    def current(self) -> TierConfig: ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (UTC)."""
        ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class TurnLog(Protocol):
    """The slice of a logger the turn uses (Powertools ``Logger`` or ``logging.Logger``)."""

    def info(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...

    def error(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...


# -- the usage store ------------------------------------------------------------------------


class StoreUnavailable(Exception):
    """The usage store could not be read or written."""


@dataclass(frozen=True)
class TurnState:
    """What one read returns: the user's usage and any prepared-response candidates found."""

    usage: UsageSnapshot
    prepared: Mapping[str, PreparedResponse] = field(default_factory=dict)


class TurnStore(Protocol):
    """One usage item per user, and the prepared responses (raises :class:`StoreUnavailable`)."""

    def read(self, user_key: str, prepared_keys: Sequence[str]) -> TurnState:
        """The user's usage item (a consistent read) and any prepared-response candidates."""
        ...

    def read_prepared(self, prepared_keys: Sequence[str]) -> Mapping[str, PreparedResponse]: ...

    def reserve(
        self, user_key: str, admission: Admission, expected: UsageSnapshot, now: int
    ) -> UsageSnapshot | None:
        """Write the admission if the item is still ``expected``; otherwise return the item as
        it now is."""
        ...

    def count_request(self, user_key: str, bucket: int, now: int) -> UsageSnapshot:
        """Count one refused request, unconditionally; returns the item after the write."""
        ...

    def settle(
        self,
        user_key: str,
        reservation: Reservation | None,
        usage: TokenUsage,
        now: int,
        counted: CountedConversation | None = None,
    ) -> UsageSnapshot:
        """Charge ``usage`` and remove the reservation, recording ``counted`` with it."""
        ...

    def release(self, user_key: str, reservation_id: str) -> None: ...


class PreparedKeySource(Protocol):
    """Lists every prepared-response key (one keys-only scan), for the in-memory index."""

    def prepared_keys(self) -> list[str]: ...


# -- the model, stops, and what a turn leaves behind ------------------------------------------


class ModelProvider(Protocol):
    """Streams one model answer: text deltas, then exactly one completion."""

    name: str

    def stream(self, request: ModelRequest) -> Iterator[TextDelta | Completion]: ...


class TokenCounter(Protocol):
    """Counts tokens exactly as the model will charge them, where its provider can (None: it
    cannot, and the caller keeps its bound or estimate)."""

    def input_tokens(self, request: ModelRequest) -> int | None: ...

    def output_tokens(self, model_id: str, text: str) -> int | None: ...


class NoTokenCounter:
    def input_tokens(self, request: ModelRequest) -> int | None:
        return None

    def output_tokens(self, model_id: str, text: str) -> int | None:
        return None


class StopSignals(Protocol):
    """Where stops are recorded by one invocation and found by another."""

    def request(self, sub: str, turn_id: str, now: int) -> None:
        """Record that ``sub`` asked to stop ``turn_id``."""
        ...

    def requested(self, sub: str, turn_id: str, now: int) -> bool:
        """Whether a live stop is recorded for ``sub``'s ``turn_id``."""
        ...


class AnalyticsSink(Protocol):
    def record(self, record: TurnRecord) -> None: ...


class TurnMetrics(Protocol):
    def emit(self, record: TurnRecord, counters: TurnCounters) -> None: ...


# -- the door's side ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputReport:
    """What a door's output delivered of one turn."""

    events_published: int = 0
    events_failed: int = 0
    publish_retries: int = 0
    #: The terminal's type and error code as the client got them, when the output had to end
    #: the turn differently from the outcome it was given (an answer it could not deliver whole).
    terminal_type: str | None = None
    terminal_code: str | None = None


class TurnOutput(Protocol):
    """Where one turn's answer goes, in the door's own format: any number of deltas, then one
    terminal. Nothing is sent before the turn is admitted."""

    def delta(self, text: str) -> None: ...

    def finish(self, outcome: TurnOutcome) -> OutputReport: ...

    def cancelled(self) -> bool:
        """Whether the client has gone (a closed HTTP stream): the model call stops."""
        ...
