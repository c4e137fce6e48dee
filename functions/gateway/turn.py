"""One chat turn, from an inbound event to exactly one terminal outbound event (docs/wire.md).

The orchestration is plain Python over small ports — tier source, store, model provider,
publisher, analytics, metrics, clock — so every path (refusals, faults, races) is tested with
in-memory fakes and the real adapters alike. Its guarantees:

* the caller's identity comes from AppSync, and every event goes to the caller's own channel;
* a turn is admitted only by a conditional reservation of its worst case, settled with what the
  model really used (also when it failed after producing something) or released;
* every turn ends with exactly one ``done`` or ``error``, the last event of the turn, whatever
  the inbound event held;
* a turn its user stops (``gateway.stop``) ends with ``done``, ``stopReason: "stopped"``.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.access import Caller, caller_from_identity, owns_channel
from gateway.admission import TurnAdmission, TurnPlan, TurnRefused
from gateway.contract import ErrorCode, channel
from gateway.metering import (
    DEFAULT_RESERVATION_SECONDS,
    Reservation,
    TokenUsage,
    UsageCache,
    UsageSnapshot,
    charged_usage,
    limits_view,
)
from gateway.prepared import PreparedResponse
from gateway.prepared_index import PreparedIndex
from gateway.providers import Completion, ModelFailure, ModelProvider, ModelRequest, TextDelta
from gateway.relay import Publisher, StreamRelay
from gateway.speculation import SpeculativeCall, predicts_admission_with_margin
from gateway.stop import NoStopSignals, StopSignals, StopWatch, cut_short
from gateway.telemetry import TurnCounters, TurnRecord, record_timestamp
from gateway.tiers import Tier, TierConfig
from gateway.turn_store import StoreUnavailable, TurnState, TurnStore
from gateway.wire import (
    ChatRequest,
    InvalidRequest,
    RequestLimits,
    StopRequest,
    done_body,
    error_body,
    parse_inbound,
    printable,
    salvage_ids,
)

_PIECES = re.compile(r"\S+\s*|\s+")
#: Refusals that happen before admission, each counted against the caller's request rate.
_COUNTED_REFUSALS = frozenset(
    {ErrorCode.UNAUTHORIZED, ErrorCode.INVALID_REQUEST, ErrorCode.MODEL_NOT_ALLOWED}
)


# -- ports --------------------------------------------------------------------------------------

# The store's port and failure live in gateway.turn_store; these names stay importable here.
__all__ = ["StoreUnavailable", "TurnState", "TurnStore"]


class TierSource(Protocol):
    def current(self) -> TierConfig: ...


class AnalyticsSink(Protocol):
    def record(self, record: TurnRecord) -> None: ...


class TurnMetrics(Protocol):
    def emit(self, record: TurnRecord, counters: TurnCounters) -> None: ...


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


# -- settings and inputs ------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnSettings:
    inbound_namespace: str
    outbound_namespace: str
    limits: RequestLimits
    flush_interval: float = 0.2
    metering_fail_open: bool = False
    message_preview_chars: int = 0
    reservation_seconds: int = DEFAULT_RESERVATION_SECONDS
    #: Open the model stream while admission is in flight, when the user's kept usage predicts
    #: admission with margin (see gateway.speculation).
    speculate: bool = True
    #: Also speculate on a first message that may have a prepared response, cancelling the call
    #: on a hit (off: such turns wait for the lookup; the prepared index keeps most out of it).
    speculate_on_prepared_lookup: bool = False
    #: How often a warm function refreshes its index of prepared-response keys (seconds).
    prepared_index_seconds: float = 30.0


@dataclass(frozen=True)
class InboundEvent:
    """One event published to an inbound channel, as AppSync delivered it."""

    identity: Any
    channel_path: Any
    channel_segments: Any
    payload: Any
    request_id: str
    event_id: str | None = None


@dataclass
class TurnDeps:
    tiers: TierSource
    store: TurnStore
    provider: ModelProvider
    publisher: Publisher
    analytics: AnalyticsSink
    metrics: TurnMetrics
    log: TurnLog
    clock: Clock = field(default_factory=SystemClock)
    sleep: Callable[[float], None] = time.sleep
    #: The users' last known usage, kept across the turns of a warm function (None: read the
    #: usage item before every reservation).
    usage_cache: UsageCache | None = field(default_factory=UsageCache)
    #: Where stop requests are recorded and looked for (see ``gateway.stop``).
    stops: StopSignals = field(default_factory=NoStopSignals)


#: Ends a turn early with an error event.
_Terminal = TurnRefused


@dataclass
class _Progress:
    """Mutable facts of one turn, for the terminal event, analytics, metrics and logs."""

    caller: Caller
    turn_id: str
    conversation_id: str | None
    started_wall: float
    started: float
    tier: Tier | None = None
    model_id: str | None = None
    cached: bool = False
    usage: TokenUsage = field(default_factory=TokenUsage)
    first_token_at: float | None = None
    produced_chars: int = 0
    throttled_models: list[str] = field(default_factory=list)
    store_failures: int = 0
    publish_failures: int = 0
    publish_retries: int = 0
    reservation: Reservation | None = None
    settled: bool = False
    prompt: str = ""
    request_id: str = ""
    #: Tokens the model reported beyond the turn's reservation (charged to nobody).
    overrun_input_tokens: int = 0
    overrun_output_tokens: int = 0
    #: Model calls opened before admission and cancelled, and their input tokens (estimated).
    speculative_cancelled: int = 0
    speculative_input_tokens: int = 0


class ChatTurns:
    """Runs chat turns against injected ports."""

    def __init__(self, deps: TurnDeps, settings: TurnSettings) -> None:
        self.deps = deps
        self.settings = settings
        self.admission = TurnAdmission(
            tiers=lambda: deps.tiers.current(),
            store=deps.store,
            log=deps.log,
            clock=lambda: deps.clock.now(),
            sleep=lambda seconds: deps.sleep(seconds),
            usage_cache=deps.usage_cache,
            reservation_seconds=settings.reservation_seconds,
            fail_open=settings.metering_fail_open,
            prepared_index=_prepared_index(deps, settings),
        )

    def handle(self, event: InboundEvent) -> TurnRecord | None:
        """Run one turn to its terminal event, or record one stop request. Returns the turn's
        analytics record (``None`` when there is no user to answer, or for a stop).

        Never raises: whatever the payload holds, a user's event ends with exactly one
        terminal event on their own channel (a valid stop request with none)."""
        deps, settings = self.deps, self.settings
        try:
            caller = caller_from_identity(event.identity)
        except Exception:  # an identity no AppSync event carries
            caller = None
        if caller is None:
            deps.log.warning(
                "publish without a user identity dropped",
                extra={"channel": printable(str(event.channel_path)[:200])},
            )
            self._emit_metrics(None, ErrorCode.UNAUTHORIZED)
            return None

        progress = _Progress(
            caller=caller,
            turn_id=_new_turn_id(),
            conversation_id=None,
            started_wall=deps.clock.now(),
            started=deps.clock.monotonic(),
            request_id=str(event.request_id),
        )
        relay: StreamRelay | None = None
        terminal: dict[str, Any]
        try:
            conversation_id, turn_id = salvage_ids(event.payload)
            progress.conversation_id = conversation_id
            progress.turn_id = turn_id or progress.turn_id
            if not owns_channel(
                caller, settings.inbound_namespace, event.channel_path, event.channel_segments
            ):
                raise _Terminal(ErrorCode.UNAUTHORIZED)
            try:
                request = parse_inbound(event.payload, settings.limits)
            except InvalidRequest as err:
                raise _Terminal(ErrorCode.INVALID_REQUEST, str(err)) from None
            if isinstance(request, StopRequest):
                self._request_stop(caller, request)
                return None
            progress.conversation_id = request.conversationId
            progress.turn_id = request.turnId or progress.turn_id
            progress.prompt = request.messages[-1].text
            relay = self._relay(progress)
            terminal = self._run(request, progress, relay)
        except _Terminal as stop:
            terminal = error_body(stop.code, event.request_id, stop.message, **stop.extra)
            terminal.update(stop.fields)
            if stop.turn_id is not None:
                # A duplicate's answer goes under a turn id of its own, so it cannot join the
                # original turn's events (nothing of this turn was published yet).
                progress.turn_id = stop.turn_id
                relay = None
        except Exception:
            deps.log.exception("turn failed", extra={"turn": progress.turn_id})
            terminal = error_body(ErrorCode.INTERNAL_ERROR, progress.request_id)
        finally:
            if progress.reservation is not None and not progress.settled:
                self._release(progress)
        if relay is None:
            relay = self._relay(progress)
        report = relay.finish(terminal)
        progress.publish_failures += report.events_failed
        progress.publish_retries += report.publish_retries
        if terminal.get("code") in _COUNTED_REFUSALS:
            self.admission.count_refused(caller.sub)
        if report.terminal_type is not None and report.terminal_type != terminal.get("type"):
            # The relay ended a turn whose answer it could not deliver whole with an error.
            terminal = {"type": report.terminal_type, "code": report.terminal_code}
        return self._record(progress, terminal, report.events_published)

    def _request_stop(self, caller: Caller, request: StopRequest) -> None:
        """Record a stop for the caller's own turn; it produces no event of its own."""
        deps = self.deps
        fields = {"user": caller.sub, "turn": request.turnId}
        try:
            deps.stops.request(caller.sub, request.turnId, int(deps.clock.now()))
        except Exception as err:  # the turn then runs to its end, with its normal terminal
            deps.log.warning("stop not recorded", extra={**fields, "reason": str(err)[:200]})
            return
        deps.log.info("stop requested", extra=fields)

    # -- the turn ------------------------------------------------------------------------------

    def _run(self, request: ChatRequest, progress: _Progress, relay: StreamRelay) -> dict[str, Any]:
        plan = self.admission.plan(progress.caller.sub, progress.caller.groups, request, progress)
        tier = plan.tier
        messages = tuple(
            {"role": m.role, "content": [{"text": b.text} for b in m.content]}
            for m in request.messages
        )
        call = self._speculate(plan, messages)
        try:
            admitted = self.admission.admit(plan, progress)
        except BaseException:
            self._cancel(call, progress)
            raise
        if call is not None and (
            admitted.prepared is not None or admitted.max_tokens != call.request.max_tokens
        ):
            # Served a prepared answer, or admitted with less output than the call may produce.
            self._cancel(call, progress)
            call = None
        if admitted.prepared is not None:
            return self._serve_prepared(admitted.prepared, progress, relay, tier, admitted.snapshot)
        model_request = ModelRequest(
            model_id=plan.model_id,
            messages=messages,
            max_tokens=admitted.max_tokens,
            guardrail=tier.guardrail,
        )
        opened = call.take() if call is not None else None
        completion, failure = self._stream(model_request, tier, progress, relay, opened)
        return self._finish_model_turn(plan, admitted.snapshot, completion, failure, progress)

    def _speculate(
        self, plan: TurnPlan, messages: tuple[dict[str, Any], ...]
    ) -> SpeculativeCall | None:
        """Open the model call now if the kept usage predicts admission with margin."""
        if not self.settings.speculate or plan.known is None or plan.predicted is None:
            return None
        if plan.prepared_keys and not self.settings.speculate_on_prepared_lookup:
            return None  # it could be served a prepared answer: no model call before the lookup
        now = int(self.deps.clock.now())
        if not predicts_admission_with_margin(
            plan.tier, plan.known, plan.predicted, plan.input_bound, now
        ):
            return None
        request = ModelRequest(
            model_id=plan.model_id,
            messages=messages,
            max_tokens=plan.predicted.max_output_tokens,
            guardrail=plan.tier.guardrail,
        )
        return SpeculativeCall(self.deps.provider, request, plan.input_estimate)

    def _cancel(self, call: SpeculativeCall | None, progress: _Progress) -> None:
        if call is None:
            return
        call.cancel()
        progress.speculative_cancelled += 1
        progress.speculative_input_tokens += call.input_tokens

    def _finish_model_turn(
        self,
        plan: TurnPlan,
        snapshot: UsageSnapshot | None,
        completion: Completion | None,
        failure: ModelFailure | None,
        progress: _Progress,
    ) -> dict[str, Any]:
        """Settle what the model used and build the terminal event."""
        deps = self.deps
        max_tokens = (
            progress.reservation.output_tokens
            if progress.reservation is not None
            else plan.tier.max_output_tokens_per_turn
        )
        if completion is not None:
            usage: TokenUsage | None = completion.usage
        elif progress.produced_chars:
            # Produced, then failed: charge what was produced (the stream never said).
            produced = min(max_tokens, math.ceil(progress.produced_chars / 4))
            usage = TokenUsage(plan.input_estimate, produced)
        else:
            usage = None
        if usage is not None:
            snapshot = self._settle(plan.user_key, usage, snapshot, progress)
        if failure is not None:
            raise _Terminal(failure.code)
        assert completion is not None
        now = int(deps.clock.now())
        used = (snapshot or UsageSnapshot()).settled(now)
        return done_body(
            stop_reason=completion.stop_reason,
            model_id=progress.model_id or plan.model_id,
            input_tokens=progress.usage.input_tokens,
            output_tokens=progress.usage.output_tokens,
            cached=False,
            limits=limits_view(plan.tier, used),
            provider=deps.provider.name,
        )

    def _stream(
        self,
        request: ModelRequest,
        tier: Tier,
        progress: _Progress,
        relay: StreamRelay,
        opened: Iterator[Any] | None = None,
    ) -> tuple[Completion | None, ModelFailure | None]:
        """Stream the answer, falling back to the tier's fallback model only while nothing has
        been sent. Always reads the stream to its end (its usage), whatever the relay does."""
        deps = self.deps
        candidates = [request.model_id]
        if tier.fallback_model and tier.fallback_model != request.model_id:
            candidates.append(tier.fallback_model)
        failure: ModelFailure | None = None
        watch = self._stop_watch(progress)
        for model_id in candidates:
            progress.model_id = model_id
            attempt = ModelRequest(
                model_id, request.messages, request.max_tokens, request.guardrail
            )
            # The first model's stream may already be open (speculation).
            parts = opened if opened is not None else deps.provider.stream(attempt)
            opened = None
            try:
                for part in parts:
                    if isinstance(part, TextDelta):
                        if progress.first_token_at is None:
                            progress.first_token_at = deps.clock.monotonic()
                        progress.produced_chars += len(part.text)
                        relay.delta(part.text)
                    elif isinstance(part, Completion):
                        return part, None
                    if watch.stopped():
                        deps.log.info("turn stopped", extra={"turn": progress.turn_id})
                        return cut_short(parts, attempt, progress.produced_chars, deps.log), None
                failure = ModelFailure(ErrorCode.MODEL_ERROR, "stream ended without completion")
            except ModelFailure as err:
                failure = err
            except Exception as err:  # a provider bug is a model error, not a crashed turn
                deps.log.exception("model provider failed", extra={"model": model_id})
                failure = ModelFailure(ErrorCode.MODEL_ERROR, type(err).__name__)
            if failure.code == ErrorCode.MODEL_THROTTLED:
                progress.throttled_models.append(model_id)
            if progress.produced_chars:
                break  # after the first delta a failure is the answer, never a silent retry
            deps.log.warning(
                "model call failed", extra={"model": model_id, "error_code": failure.code.value}
            )
        return None, failure

    def _stop_watch(self, progress: _Progress) -> StopWatch:
        def unavailable(err: Exception) -> None:
            self.deps.log.warning("stop check failed", extra={"reason": str(err)[:200]})

        return StopWatch(
            self.deps.stops,
            progress.caller.sub,
            progress.turn_id,
            monotonic=self.deps.clock.monotonic,
            wall=self.deps.clock.now,
            on_error=unavailable,
        )

    def _serve_prepared(
        self,
        hit: PreparedResponse,
        progress: _Progress,
        relay: StreamRelay,
        tier: Tier,
        snapshot: UsageSnapshot | None,
    ) -> dict[str, Any]:
        progress.cached = True
        for piece in _PIECES.findall(hit.response):
            if progress.first_token_at is None:
                progress.first_token_at = self.deps.clock.monotonic()
            relay.delta(piece)
        now = int(self.deps.clock.now())
        used = snapshot.settled(now) if snapshot is not None else {}
        return done_body(
            stop_reason="end_turn",
            model_id=progress.model_id or "",
            input_tokens=0,
            output_tokens=0,
            cached=True,
            limits=limits_view(tier, used),
        )

    def _settle(
        self,
        user_key: str,
        reported: TokenUsage,
        snapshot: UsageSnapshot | None,
        progress: _Progress,
    ) -> UsageSnapshot | None:
        charge = charged_usage(progress.reservation, reported)
        usage = charge.usage
        progress.usage = usage
        progress.overrun_input_tokens = charge.overrun_input_tokens
        progress.overrun_output_tokens = charge.overrun_output_tokens
        if charge.overrun_input_tokens or charge.overrun_output_tokens:
            # The model counted more than the turn's upper bound: stored usage stays within the
            # limits (the reservation was admitted within them); the excess is counted instead.
            self.deps.log.warning(
                "model reported more tokens than were reserved; the excess is not charged",
                extra={
                    "user": progress.caller.sub,
                    "model": progress.model_id,
                    "overrun_input_tokens": charge.overrun_input_tokens,
                    "overrun_output_tokens": charge.overrun_output_tokens,
                },
            )
        now = int(self.deps.clock.now())
        try:
            settled = self.deps.store.settle(user_key, progress.reservation, usage, now)
            progress.settled = True
            self.admission.remember(user_key, settled)
            return settled
        except StoreUnavailable as err:
            self.admission.forget(user_key)
            self.deps.log.error(
                "usage not settled",
                extra={
                    "user": progress.caller.sub,
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "reason": str(err),
                },
            )
            progress.store_failures += 1
            progress.settled = True  # the reservation expires by itself; releasing would fail too
            base = snapshot or UsageSnapshot()
            return base.with_settlement(progress.reservation, usage, now)

    def _release(self, progress: _Progress) -> None:
        assert progress.reservation is not None
        user_key = f"user#{progress.caller.sub}"
        self.admission.forget(user_key)
        try:
            self.deps.store.release(user_key, progress.reservation.id)
        except StoreUnavailable as err:
            self.deps.log.warning(
                "reservation not released; it will expire", extra={"reason": str(err)}
            )
            progress.store_failures += 1
        except Exception:
            self.deps.log.exception("reservation not released; it will expire")
        progress.settled = True

    # -- edges ---------------------------------------------------------------------------------

    def _relay(self, progress: _Progress) -> StreamRelay:
        def lost(err: Exception) -> None:
            self.deps.log.warning("publish failed", extra={"reason": type(err).__name__})

        return StreamRelay(
            self.deps.publisher,
            channel(self.settings.outbound_namespace, progress.caller.sub),
            progress.conversation_id,
            progress.turn_id,
            flush_interval=self._flush_interval(progress),
            on_error=lost,
            request_id=progress.request_id,
        )

    def _flush_interval(self, progress: _Progress) -> float:
        """The caller's tier's coalescing interval, else the stack's (seconds)."""
        tier = progress.tier
        if tier is None:
            try:
                tier = self.deps.tiers.current().tier_for_groups(progress.caller.groups)
            except Exception:  # the turn reports a broken tier source; the relay still works
                return self.settings.flush_interval
        if tier.stream_flush_ms is None:
            return self.settings.flush_interval
        return tier.stream_flush_ms / 1000.0

    def _record(
        self, progress: _Progress, terminal: Mapping[str, Any], events_published: int
    ) -> TurnRecord:
        deps = self.deps
        latency_ms = int((deps.clock.monotonic() - progress.started) * 1000)
        first_ms = (
            int((progress.first_token_at - progress.started) * 1000)
            if progress.first_token_at is not None
            else None
        )
        error_code = terminal.get("code") if terminal.get("type") == "error" else None
        record = TurnRecord(
            turn_id=progress.turn_id,
            conversation_id=progress.conversation_id,
            user_id=progress.caller.sub,
            tier=progress.tier.name if progress.tier else None,
            model_id=progress.model_id,
            outcome=str(terminal.get("type")),
            error_code=error_code,
            cached=progress.cached,
            input_tokens=progress.usage.input_tokens,
            output_tokens=progress.usage.output_tokens,
            cache_read_tokens=progress.usage.cache_read_tokens,
            cache_write_tokens=progress.usage.cache_write_tokens,
            latency_ms=latency_ms,
            first_token_ms=first_ms,
            events_published=events_published,
            ts=record_timestamp(progress.started_wall),
            overrun_input_tokens=progress.overrun_input_tokens,
            overrun_output_tokens=progress.overrun_output_tokens,
            speculative_cancelled=progress.speculative_cancelled,
            speculative_input_tokens=progress.speculative_input_tokens,
        )
        analytics_failures = 0
        try:
            deps.analytics.record(record)
        except Exception as err:
            analytics_failures = 1
            deps.log.warning("analytics record lost", extra={"reason": type(err).__name__})
        counters = TurnCounters(
            throttled_models=tuple(progress.throttled_models),
            usage_store_failures=progress.store_failures,
            analytics_failures=analytics_failures,
            publish_failures=progress.publish_failures,
            publish_retries=progress.publish_retries,
        )
        try:
            deps.metrics.emit(record, counters)
        except Exception:
            deps.log.exception("metrics not emitted")
        fields: dict[str, Any] = {
            "user": record.user_id,
            "conversation": record.conversation_id,
            "turn": record.turn_id,
            "model": record.model_id,
            "tier": record.tier,
            "input_tokens": record.input_tokens,
            "output_tokens": record.output_tokens,
            "latency_ms": record.latency_ms,
            "first_token_ms": record.first_token_ms,
            "outcome": record.outcome,
            "error_code": record.error_code,
            "cached": record.cached,
            "events_published": record.events_published,
        }
        if progress.publish_retries or progress.publish_failures:
            fields["publish_retries"] = progress.publish_retries
            fields["publish_failures"] = progress.publish_failures
        if self.settings.message_preview_chars > 0 and progress.prompt:
            fields["prompt_preview"] = printable(
                progress.prompt[: self.settings.message_preview_chars]
            )
        deps.log.info("turn finished", extra=fields)
        return record

    def _emit_metrics(self, model_id: str | None, code: ErrorCode) -> None:
        record = TurnRecord(
            turn_id="",
            conversation_id=None,
            user_id="",
            tier=None,
            model_id=model_id,
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
            ts=record_timestamp(self.deps.clock.now()),
        )
        try:
            self.deps.metrics.emit(record, TurnCounters())
        except Exception:
            self.deps.log.exception("metrics not emitted")


def _new_turn_id() -> str:
    return "g-" + uuid.uuid4().hex[:24]


def _prepared_index(deps: TurnDeps, settings: TurnSettings) -> PreparedIndex | None:
    """The in-memory index of prepared keys, where the store can list them."""
    load = getattr(deps.store, "prepared_keys", None)
    if load is None:
        return None
    return PreparedIndex(load, settings.prepared_index_seconds, log=deps.log)
