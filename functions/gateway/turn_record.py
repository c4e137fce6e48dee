"""The last step of every turn: one analytics record, its metrics and one log line.

:class:`TurnTrace` holds the facts of one turn as the core learns them from each step's result;
only :class:`gateway.turn.ChatTurns` writes to it. :class:`TurnRecorder` turns it into the
record, and never lets an analytics or metrics failure reach the user's turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.access import Caller
from gateway.contract import ErrorCode
from gateway.metering import usd
from gateway.ports import AnalyticsSink, Clock, OutputReport, TurnLog, TurnMetrics
from gateway.telemetry import TurnCounters, TurnRecord, record_timestamp
from gateway.turn_io import EVENTS_DOOR, TurnFailed, TurnOutcome
from gateway.usage import TokenUsage
from gateway.wire import printable


@dataclass
class TurnTrace:
    """What happened in one turn, for its record, metrics and log."""

    caller: Caller
    turn_id: str
    conversation_id: str | None
    request_id: str
    started_wall: float
    started: float
    #: The door the turn came through (a dimension of its record and metrics).
    door: str = EVENTS_DOOR
    prompt: str = ""
    tier: str | None = None
    model_id: str | None = None
    cached: bool = False
    usage: TokenUsage = field(default_factory=TokenUsage)
    first_token_at: float | None = None
    throttled_models: tuple[str, ...] = ()
    store_failures: int = 0
    #: Tokens the model reported beyond the turn's reservation (charged to nobody).
    overrun_input_tokens: int = 0
    overrun_output_tokens: int = 0
    #: Model calls opened before admission and cancelled, and their input tokens (estimated).
    speculative_cancelled: int = 0
    speculative_input_tokens: int = 0


class TurnRecorder:
    """Writes each turn's analytics record, metrics and log line."""

    def __init__(
        self,
        analytics: AnalyticsSink,
        metrics: TurnMetrics,
        log: TurnLog,
        clock: Clock,
        *,
        message_preview_chars: int = 0,
    ) -> None:
        self._analytics = analytics
        self._metrics = metrics
        self._log = log
        self._clock = clock
        self._preview = message_preview_chars

    def finish(self, trace: TurnTrace, outcome: TurnOutcome, report: OutputReport) -> TurnRecord:
        """Record a turn that ended with ``outcome``, as its output delivered it."""
        outcome_type, error_code = _terminal(outcome, report)
        record = self._record(trace, outcome_type, error_code, report.events_published)
        analytics_failures = 0
        try:
            self._analytics.record(record)
        except Exception as err:
            analytics_failures = 1
            self._log.warning("analytics record lost", extra={"reason": type(err).__name__})
        counters = TurnCounters(
            throttled_models=trace.throttled_models,
            usage_store_failures=trace.store_failures,
            analytics_failures=analytics_failures,
            publish_failures=report.events_failed,
            publish_retries=report.publish_retries,
        )
        self._emit(record, counters)
        self._log.info("turn finished", extra=self._log_fields(trace, record, report))
        return record

    def dropped(self, code: ErrorCode, door: str = EVENTS_DOOR) -> None:
        """Count an event that had no user to answer."""
        record = TurnRecord(
            turn_id="",
            conversation_id=None,
            user_id="",
            tier=None,
            model_id=None,
            outcome="error",
            error_code=code.value,
            cached=False,
            input_tokens=0,
            output_tokens=0,
            cache_read_tokens=0,
            cache_write_tokens=0,
            latency_ms=0,
            first_token_ms=None,
            events_published=0,
            ts=record_timestamp(self._clock.now()),
            door=door,
        )
        self._emit(record, TurnCounters())

    def _record(
        self, trace: TurnTrace, outcome: str, error_code: str | None, events_published: int
    ) -> TurnRecord:
        latency_ms = int((self._clock.monotonic() - trace.started) * 1000)
        first_ms = (
            int((trace.first_token_at - trace.started) * 1000)
            if trace.first_token_at is not None
            else None
        )
        return TurnRecord(
            turn_id=trace.turn_id,
            conversation_id=trace.conversation_id,
            user_id=trace.caller.sub,
            tier=trace.tier,
            model_id=trace.model_id,
            outcome=outcome,
            error_code=error_code,
            cached=trace.cached,
            input_tokens=trace.usage.input_tokens,
            output_tokens=trace.usage.output_tokens,
            cache_read_tokens=trace.usage.cache_read_tokens,
            cache_write_tokens=trace.usage.cache_write_tokens,
            latency_ms=latency_ms,
            first_token_ms=first_ms,
            events_published=events_published,
            ts=record_timestamp(trace.started_wall),
            overrun_input_tokens=trace.overrun_input_tokens,
            overrun_output_tokens=trace.overrun_output_tokens,
            speculative_cancelled=trace.speculative_cancelled,
            speculative_input_tokens=trace.speculative_input_tokens,
            cost_usd=usd(trace.usage.cost_nano),
            door=trace.door,
        )

    def _emit(self, record: TurnRecord, counters: TurnCounters) -> None:
        try:
            self._metrics.emit(record, counters)
        except Exception:
            self._log.exception("metrics not emitted")

    def _log_fields(
        self, trace: TurnTrace, record: TurnRecord, report: OutputReport
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "user": record.user_id,
            "conversation": record.conversation_id,
            "turn": record.turn_id,
            "model": record.model_id,
            "tier": record.tier,
            "door": record.door,
            "input_tokens": record.input_tokens,
            "output_tokens": record.output_tokens,
            "latency_ms": record.latency_ms,
            "first_token_ms": record.first_token_ms,
            "outcome": record.outcome,
            "error_code": record.error_code,
            "cached": record.cached,
            "events_published": record.events_published,
        }
        if report.publish_retries or report.events_failed:
            fields["publish_retries"] = report.publish_retries
            fields["publish_failures"] = report.events_failed
        if self._preview > 0 and trace.prompt:
            fields["prompt_preview"] = printable(trace.prompt[: self._preview])
        return fields


def _terminal(outcome: TurnOutcome, report: OutputReport) -> tuple[str, str | None]:
    """The terminal's type and error code as the client got them."""
    given = ("error", outcome.code.value) if isinstance(outcome, TurnFailed) else ("done", None)
    if report.terminal_type is not None and report.terminal_type != given[0]:
        # The output ended a turn whose answer it could not deliver whole with an error.
        return report.terminal_type, report.terminal_code
    return given
