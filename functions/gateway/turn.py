"""One chat turn, from an inbound event to exactly one terminal outbound event (§2).

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

import contextlib
import math
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.access import Caller, caller_from_identity, owns_channel
from gateway.contract import ErrorCode, channel
from gateway.metering import (
    DEFAULT_RESERVATION_SECONDS,
    Admission,
    Refusal,
    Reservation,
    TokenUsage,
    UsageCache,
    UsageSnapshot,
    estimate_input_tokens,
    limits_view,
    plan_turn,
)
from gateway.prepared import PreparedResponse, candidate_keys, pick
from gateway.providers import Completion, ModelFailure, ModelProvider, ModelRequest, TextDelta
from gateway.relay import Publisher, StreamRelay
from gateway.stop import NoStopSignals, StopSignals, StopWatch, cut_short
from gateway.telemetry import TurnCounters, TurnRecord, record_timestamp
from gateway.tiers import Tier, TierConfig
from gateway.windows import iso_utc
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

#: Reservation attempts when other turns of the same user keep winning the race.
MAX_RESERVE_ATTEMPTS = 24
#: A model id safe to echo in a refusal (matched with ``fullmatch``: ``$`` allows a newline).
_SAFE_MODEL = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
_PIECES = re.compile(r"\S+\s*|\s+")


# -- ports --------------------------------------------------------------------------------------


class StoreUnavailable(Exception):
    """The usage store could not be read or written."""


@dataclass(frozen=True)
class TurnState:
    """What one read returns: the user's usage and any prepared-response candidates found."""

    usage: UsageSnapshot
    prepared: Mapping[str, PreparedResponse] = field(default_factory=dict)


class TurnStore(Protocol):
    def read(self, user_key: str, prepared_keys: Sequence[str]) -> TurnState:
        """The user's usage item (a consistent read) and any prepared-response candidates."""
        ...

    def read_prepared(self, prepared_keys: Sequence[str]) -> Mapping[str, PreparedResponse]:
        """Just the prepared-response candidates."""
        ...

    def reserve(
        self, user_key: str, admission: Admission, expected: UsageSnapshot, now: int
    ) -> UsageSnapshot | None:
        """Write the reservation if the item is still ``expected``; otherwise return the item
        as it now is."""
        ...

    def settle(
        self, user_key: str, reservation: Reservation | None, usage: TokenUsage, now: int
    ) -> UsageSnapshot: ...

    def release(self, user_key: str, reservation_id: str) -> None: ...


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


class _Terminal(Exception):
    """Ends a turn early with an error event."""

    def __init__(self, code: ErrorCode, message: str | None = None, **extra: Any) -> None:
        super().__init__(code.value)
        self.code = code
        self.message = message
        self.extra = extra


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


class ChatTurns:
    """Runs chat turns against injected ports."""

    def __init__(self, deps: TurnDeps, settings: TurnSettings) -> None:
        self.deps = deps
        self.settings = settings

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
        deps = self.deps
        tier = deps.tiers.current().tier_for_groups(progress.caller.groups)
        progress.tier = tier
        model_id = request.modelId or tier.default_model
        if not tier.allows(model_id):
            shown = f"'{model_id}'" if _SAFE_MODEL.fullmatch(model_id) else "That model"
            raise _Terminal(
                ErrorCode.MODEL_NOT_ALLOWED,
                f"{shown} is not available on the {tier.name} tier; "
                f"allowed: {', '.join(tier.models)}.",
            )
        progress.model_id = model_id

        user_key = f"user#{progress.caller.sub}"
        cacheable = tier.cache and len(request.messages) == 1
        keys = candidate_keys(model_id, request.messages[0].text) if cacheable else ()
        estimate = estimate_input_tokens(m.text for m in request.messages)
        reservation_id = uuid.uuid4().hex
        now = int(deps.clock.now())
        # A warm function that already knows the user's item plans on it and does not read it
        # again: the reservation lands only if the item is still that version. A refusal is
        # never decided on a kept snapshot, only on a fresh read.
        known = deps.usage_cache.get(user_key) if deps.usage_cache is not None else None
        plan: Admission | None = None
        if known is not None:
            planned = plan_turn(
                known, tier, now, estimate, reservation_id, self.settings.reservation_seconds
            )
            if isinstance(planned, Admission):
                plan = planned
            else:
                known = None
        state: TurnState | None = None
        try:
            if known is None:
                state = deps.store.read(user_key, keys)
                self._remember(user_key, state.usage)
            else:
                state = TurnState(known, deps.store.read_prepared(keys) if keys else {})
        except StoreUnavailable as err:
            self._store_failed(progress, "read", err)

        hit = pick(state.prepared, keys, now) if state is not None else None
        if hit is not None:
            return self._serve_prepared(hit, progress, relay, tier, state)

        max_tokens = tier.max_output_tokens_per_turn
        snapshot = state.usage if state is not None else known
        if snapshot is not None:
            admission, snapshot = self._reserve(
                user_key, snapshot, tier, estimate, progress, reservation_id, plan
            )
            if admission is not None:
                max_tokens = admission.max_output_tokens
        model_request = ModelRequest(
            model_id=model_id,
            messages=tuple(
                {"role": m.role, "content": [{"text": b.text} for b in m.content]}
                for m in request.messages
            ),
            max_tokens=max_tokens,
            guardrail=tier.guardrail,
        )
        completion, failure = self._stream(model_request, tier, progress, relay)

        if completion is not None:
            usage = completion.usage
        elif progress.produced_chars:
            # Produced, then failed: charge what was produced (the stream never said).
            usage = TokenUsage(estimate, min(max_tokens, math.ceil(progress.produced_chars / 4)))
        else:
            usage = None
        if usage is not None:
            progress.usage = usage
            snapshot = self._settle(user_key, usage, snapshot, progress)
        if failure is not None:
            raise _Terminal(failure.code)
        assert completion is not None
        now = int(deps.clock.now())
        used = (snapshot or UsageSnapshot()).settled(now)
        return done_body(
            stop_reason=completion.stop_reason,
            model_id=progress.model_id or model_id,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            cached=False,
            limits=limits_view(tier, used),
            provider=deps.provider.name,
        )

    def _reserve(
        self,
        user_key: str,
        snapshot: UsageSnapshot,
        tier: Tier,
        estimate: int,
        progress: _Progress,
        reservation_id: str,
        first_plan: Admission | None = None,
    ) -> tuple[Admission | None, UsageSnapshot]:
        """Reserve the turn's worst case, retrying while other turns win the race. Returns the
        admission (``None`` when the store failed and the stack meters fail-open) and the usage
        item it was admitted against.

        ``first_plan`` is an admission already planned on a kept snapshot; every other plan,
        and so every refusal, is made on the item as the store just returned it."""
        deps = self.deps
        plan: Admission | Refusal | None = first_plan
        for attempt in range(MAX_RESERVE_ATTEMPTS):
            now = int(deps.clock.now())
            if plan is None:
                plan = plan_turn(
                    snapshot, tier, now, estimate, reservation_id, self.settings.reservation_seconds
                )
            if isinstance(plan, Refusal):
                raise _Terminal(
                    ErrorCode.LIMIT_EXCEEDED,
                    _refusal_message(plan),
                    window=plan.window,
                    resets_at=iso_utc(plan.resets_at),
                    limits=limits_view(tier, snapshot.committed(now)),
                )
            try:
                current = deps.store.reserve(user_key, plan, snapshot, now)
            except StoreUnavailable as err:
                self._forget(user_key)
                # The write may have landed with only its answer lost (a timeout): take the
                # reservation back now rather than let it hold the user's headroom until it
                # expires. Removing a reservation that was never written changes nothing.
                with contextlib.suppress(StoreUnavailable):
                    deps.store.release(user_key, reservation_id)
                self._store_failed(progress, "reserve", err)
                return None, snapshot
            if current is None or reservation_id in current.reservations:
                # Admitted; the second case is a write retried by botocore after its first
                # attempt landed (the same reservation id makes the retry harmless). The item
                # has moved on from the kept snapshot; the settle brings the new one.
                self._forget(user_key)
                progress.reservation = plan.reservation
                return plan, snapshot
            snapshot = current
            self._remember(user_key, current)
            if attempt > 0 or first_plan is None:
                # Full jitter, doubling up to a cap: many turns of one user racing (a script, a
                # retry storm) spread out instead of failing together after a few close misses.
                # A kept snapshot that was merely out of date is retried at once.
                deps.sleep(random.uniform(0, min(0.25, 0.01 * 2**attempt)))
            plan = None
        deps.log.warning("reservation kept losing races", extra={"user": progress.caller.sub})
        raise _Terminal(ErrorCode.USAGE_UNAVAILABLE)

    def _remember(self, user_key: str, snapshot: UsageSnapshot) -> None:
        if self.deps.usage_cache is not None:
            self.deps.usage_cache.put(user_key, snapshot)

    def _forget(self, user_key: str) -> None:
        if self.deps.usage_cache is not None:
            self.deps.usage_cache.drop(user_key)

    def _stream(
        self, request: ModelRequest, tier: Tier, progress: _Progress, relay: StreamRelay
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
            parts = deps.provider.stream(attempt)
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
        state: TurnState | None,
    ) -> dict[str, Any]:
        progress.cached = True
        for piece in _PIECES.findall(hit.response):
            if progress.first_token_at is None:
                progress.first_token_at = self.deps.clock.monotonic()
            relay.delta(piece)
        now = int(self.deps.clock.now())
        used = state.usage.settled(now) if state is not None else {}
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
        usage: TokenUsage,
        snapshot: UsageSnapshot | None,
        progress: _Progress,
    ) -> UsageSnapshot | None:
        now = int(self.deps.clock.now())
        try:
            settled = self.deps.store.settle(user_key, progress.reservation, usage, now)
            progress.settled = True
            self._remember(user_key, settled)
            return settled
        except StoreUnavailable as err:
            self._forget(user_key)
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
        self._forget(user_key)
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

    def _store_failed(self, progress: _Progress, step: str, err: Exception) -> None:
        """Count and log a store failure; refuse the turn unless the stack meters fail-open."""
        progress.store_failures += 1
        self.deps.log.error(
            "usage store unavailable",
            extra={"step": step, "reason": str(err), "fail_open": self.settings.metering_fail_open},
        )
        if not self.settings.metering_fail_open:
            raise _Terminal(ErrorCode.USAGE_UNAVAILABLE)

    # -- edges ---------------------------------------------------------------------------------

    def _relay(self, progress: _Progress) -> StreamRelay:
        def lost(err: Exception) -> None:
            self.deps.log.warning("publish failed", extra={"reason": type(err).__name__})

        return StreamRelay(
            self.deps.publisher,
            channel(self.settings.outbound_namespace, progress.caller.sub),
            progress.conversation_id,
            progress.turn_id,
            flush_interval=self.settings.flush_interval,
            on_error=lost,
            request_id=progress.request_id,
        )

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


def _refusal_message(refusal: Refusal) -> str:
    names = {
        "dailyInputTokens": "daily input",
        "dailyOutputTokens": "daily output",
        "monthlyInputTokens": "monthly input",
        "monthlyOutputTokens": "monthly output",
    }
    return (
        f"You have reached your {names[refusal.window]} token limit "
        f"({refusal.allowed}); you can continue after {iso_utc(refusal.resets_at)}."
    )
