"""The turn core: one chat turn from a door's request to exactly one outcome.

A turn is a short pipeline of steps, each in its own module and each returning what it decided:

1. **admission** (:mod:`gateway.admission`) — the caller's tier and model, then one conditional
   write that reserves the turn's worst case, counts its request and records its id; the
   reservation comes back as a lease (:mod:`gateway.lease`);
2. **speculation** (:mod:`gateway.speculation`) — when the user's kept usage predicts
   admission with margin, the model stream opens while admission is in flight;
3. **the model step** (:mod:`gateway.model_call`) — the answer streamed to the door's output,
   with fallback before the first delta and the user's stop;
4. **settlement** — the lease settles what the model used (or releases on any other exit);
5. **the record** (:mod:`gateway.turn_record`) — analytics, metrics, one log line.

:class:`ChatTurns` only orders these steps. It knows nothing of AppSync or HTTP: a door
(:mod:`gateway.events_door`, or the OpenAI-compatible API) turns its input into a
:class:`gateway.turn_io.TurnRequest` and supplies a :class:`gateway.ports.TurnOutput`.
Its guarantees: the reservation is settled or released whatever happens; every turn ends with
exactly one outcome handed to the output, the last thing the output receives.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gateway.access import Caller
from gateway.admission import Admitted, TurnAdmission, TurnPlan
from gateway.contract import ErrorCode
from gateway.environment import DEFAULT_TIER_CONFIG_CACHE_SECONDS
from gateway.lease import ReservationLease
from gateway.metering import DEFAULT_RESERVATION_SECONDS, limits_view, usd
from gateway.model import ModelRequest
from gateway.model_call import ModelCall, ModelRun
from gateway.ports import (
    AnalyticsSink,
    Clock,
    ModelProvider,
    NoTokenCounter,
    PreparedKeySource,
    StopSignals,
    SystemClock,
    TierSource,
    TokenCounter,
    TurnLog,
    TurnMetrics,
    TurnOutput,
    TurnStore,
)
from gateway.prepared import PreparedResponse
from gateway.prepared_index import PreparedIndex
from gateway.settlement import charged_usage_of, counted_conversation
from gateway.speculation import SpeculativeCall, speculate
from gateway.stop import NoStopSignals, stop_watch
from gateway.telemetry import TurnRecord
from gateway.tiers import Tier
from gateway.turn_io import (
    EVENTS_DOOR,
    TurnDone,
    TurnFailed,
    TurnOutcome,
    TurnRefused,
    TurnRequest,
)
from gateway.turn_record import TurnRecorder, TurnTrace
from gateway.usage import CountedConversation, TokenUsage, UsageSnapshot
from gateway.usage_cache import UsageCache
from gateway.usage_report import UsageReport, usage_report

_PIECES = re.compile(r"\S+\s*|\s+")
#: Refusals decided before admission, each counted against the caller's request rate.
COUNTED_REFUSALS = frozenset(
    {ErrorCode.UNAUTHORIZED, ErrorCode.INVALID_REQUEST, ErrorCode.MODEL_NOT_ALLOWED}
)


@dataclass(frozen=True)
class TurnSettings:
    """How the core runs turns (the stack's settings; doors have their own)."""

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
    prepared_index_seconds: float = float(DEFAULT_TIER_CONFIG_CACHE_SECONDS)


@dataclass
class TurnDeps:
    """The adapters behind the core's ports."""

    tiers: TierSource
    store: TurnStore
    provider: ModelProvider
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
    #: Lists the prepared-response keys for the warm index (None: look candidates up on every
    #: first message).
    prepared_keys: PreparedKeySource | None = None
    #: Counts tokens exactly where the provider can (a turn that does not fit its bound, and
    #: what a stopped turn produced).
    counter: TokenCounter = field(default_factory=NoTokenCounter)


class ChatTurns:
    """Runs turns against injected ports; each door calls :meth:`run` or :meth:`refuse`."""

    def __init__(self, deps: TurnDeps, settings: TurnSettings | None = None) -> None:
        settings = settings or TurnSettings()
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
        self.recorder = TurnRecorder(
            deps.analytics,
            deps.metrics,
            deps.log,
            deps.clock,
            message_preview_chars=settings.message_preview_chars,
        )

    # -- what a door calls ----------------------------------------------------------------------

    def run(self, request: TurnRequest, output: TurnOutput) -> TurnRecord:
        """Run one turn to its outcome, handed to ``output`` last. Never raises."""
        trace = self._trace(request.caller, request.request_id, request.turn_id, request.door)
        trace.conversation_id = request.conversation_id
        trace.prompt = request.prompt
        outcome: TurnOutcome
        try:
            outcome = self._answer(request, output, trace)
        except TurnRefused as refusal:
            outcome = refusal.failure
            trace.store_failures += refusal.store_failures
        except Exception:
            self.deps.log.exception("turn failed", extra={"turn": request.turn_id})
            outcome = TurnFailed(ErrorCode.INTERNAL_ERROR)
        return self._finish(trace, outcome, output)

    def refuse(
        self,
        caller: Caller,
        failure: TurnFailed,
        output: TurnOutput,
        *,
        request_id: str,
        turn_id: str,
        conversation_id: str | None = None,
        door: str = EVENTS_DOOR,
    ) -> TurnRecord:
        """End a turn its door refused before it reached the core (not the caller's channel,
        not a valid request): its outcome, its count against the request rate, its record."""
        trace = self._trace(caller, request_id, turn_id, door)
        trace.conversation_id = conversation_id
        return self._finish(trace, failure, output)

    def request_stop(self, caller: Caller, turn_id: str) -> None:
        """Record a stop for the caller's own turn (best effort: on failure the turn runs on)."""
        deps = self.deps
        fields = {"user": caller.sub, "turn": turn_id}
        try:
            deps.stops.request(caller.sub, turn_id, int(deps.clock.now()))
        except Exception as err:
            deps.log.warning("stop not recorded", extra={**fields, "reason": str(err)[:200]})
            return
        deps.log.info("stop requested", extra=fields)

    def usage(self, caller: Caller) -> UsageReport | TurnFailed:
        """The caller's tier, models and usage (one read at most; no model call)."""
        deps = self.deps
        return usage_report(caller, deps.tiers, deps.store, deps.usage_cache, int(deps.clock.now()))

    def dropped(self, code: ErrorCode, door: str = EVENTS_DOOR) -> None:
        """Count an event (or a request) that had no user to answer."""
        self.recorder.dropped(code, door)

    def tier_of(self, caller: Caller) -> Tier | None:
        """The caller's tier (None when the tier source fails; the turn then reports it)."""
        try:
            return self.deps.tiers.current().tier_for_groups(caller.groups)
        except Exception:
            return None

    # -- the pipeline ---------------------------------------------------------------------------

    def _answer(self, request: TurnRequest, output: TurnOutput, trace: TurnTrace) -> TurnOutcome:
        tier = _within_client_maximum(self.admission.tier_of(request), request)
        trace.tier = tier.name
        model_request = ModelRequest(
            model_id=request.model_id or tier.default_model,
            messages=tuple(m.to_converse() for m in request.messages),
            max_tokens=tier.max_output_tokens_per_turn,
            guardrail=tier.guardrail,
            system=request.system,
            temperature=request.sampling.temperature,
            top_p=request.sampling.top_p,
            stop_sequences=request.sampling.stop,
        )
        counter = self.deps.counter
        plan = self.admission.plan(request, tier, lambda: counter.input_tokens(model_request))
        trace.model_id = plan.model_id
        call = self._speculate(plan, model_request)
        try:
            admitted = self.admission.admit(plan)
        except BaseException:
            _cancel(call, trace)
            raise
        trace.store_failures += admitted.store_failures
        lease = admitted.lease
        try:
            with lease:
                return self._admitted(request, plan, admitted, model_request, call, output, trace)
        finally:
            trace.store_failures += lease.store_failures

    def _admitted(
        self,
        request: TurnRequest,
        plan: TurnPlan,
        admitted: Admitted,
        model_request: ModelRequest,
        call: SpeculativeCall | None,
        output: TurnOutput,
        trace: TurnTrace,
    ) -> TurnOutcome:
        if call is not None and (
            admitted.prepared is not None or admitted.max_tokens != call.request.max_tokens
        ):
            # Served a prepared answer, or admitted with less output than the call may produce.
            _cancel(call, trace)
            call = None
        if admitted.prepared is not None:
            return self._serve_prepared(admitted.prepared, plan, admitted.snapshot, output, trace)
        model_request = replace(model_request, max_tokens=admitted.max_tokens)
        deps = self.deps
        watch = stop_watch(deps.stops, trace.caller.sub, trace.turn_id, deps.clock, deps.log)
        run = ModelCall(
            deps.provider, output, watch, clock=deps.clock, log=deps.log, turn_id=trace.turn_id
        ).run(model_request, plan.tier.fallback_model, call.take() if call else None)
        trace.model_id = run.model_id
        trace.first_token_at = run.first_token_at
        trace.throttled_models = tuple(run.throttled_models)
        return self._settle(
            plan,
            admitted,
            run,
            trace,
            counted_conversation(request, run, int(self.deps.clock.now())),
            model_request,
        )

    def _settle(
        self,
        plan: TurnPlan,
        admitted: Admitted,
        run: ModelRun,
        trace: TurnTrace,
        counted: CountedConversation | None,
        model_request: ModelRequest,
    ) -> TurnOutcome:
        """Settle what the model used and say how the turn ended."""
        lease: ReservationLease = admitted.lease
        usage = charged_usage_of(run, model_request, plan, lease, self.deps.counter)
        snapshot = admitted.snapshot
        now = int(self.deps.clock.now())
        if usage is not None:
            settlement = lease.settle(usage, snapshot, now, counted)
            trace.usage = settlement.usage
            trace.overrun_input_tokens = settlement.overrun_input_tokens
            trace.overrun_output_tokens = settlement.overrun_output_tokens
            snapshot = settlement.snapshot
        if run.failure is not None or run.completion is None:
            code = run.failure.code if run.failure is not None else ErrorCode.MODEL_ERROR
            return TurnFailed(code)
        used = (snapshot or UsageSnapshot()).settled(now)
        return TurnDone(
            stop_reason=run.completion.stop_reason,
            model_id=run.model_id,
            usage=trace.usage,
            cached=False,
            limits=limits_view(plan.tier, used),
            provider=self.deps.provider.name,
            cost_usd=usd(trace.usage.cost_nano) if plan.price is not None else None,
        )

    def _serve_prepared(
        self,
        hit: PreparedResponse,
        plan: TurnPlan,
        snapshot: UsageSnapshot | None,
        output: TurnOutput,
        trace: TurnTrace,
    ) -> TurnOutcome:
        trace.cached = True
        for piece in _PIECES.findall(hit.response):
            if trace.first_token_at is None:
                trace.first_token_at = self.deps.clock.monotonic()
            output.delta(piece)
        now = int(self.deps.clock.now())
        used = snapshot.settled(now) if snapshot is not None else {}
        return TurnDone(
            stop_reason="end_turn",
            model_id=trace.model_id or "",
            usage=TokenUsage(),
            cached=True,
            limits=limits_view(plan.tier, used),
            cost_usd=0.0 if plan.price is not None else None,
        )

    def _speculate(self, plan: TurnPlan, request: ModelRequest) -> SpeculativeCall | None:
        """Open the model call now if the kept usage predicts admission with margin."""
        if not self.settings.speculate:
            return None
        if plan.prepared_keys and not self.settings.speculate_on_prepared_lookup:
            return None  # it could be served a prepared answer: no model call before the lookup
        return speculate(self.deps.provider, plan, request, int(self.deps.clock.now()))

    def _trace(
        self, caller: Caller, request_id: str, turn_id: str, door: str = EVENTS_DOOR
    ) -> TurnTrace:
        return TurnTrace(
            caller=caller,
            door=door,
            turn_id=turn_id,
            conversation_id=None,
            request_id=request_id,
            started_wall=self.deps.clock.now(),
            started=self.deps.clock.monotonic(),
        )

    def _finish(self, trace: TurnTrace, outcome: TurnOutcome, output: TurnOutput) -> TurnRecord:
        if isinstance(outcome, TurnFailed) and outcome.answer_turn_id is not None:
            trace.turn_id = outcome.answer_turn_id
        if isinstance(outcome, TurnFailed) and outcome.code in COUNTED_REFUSALS:
            # Counted before the client hears of it: a client that sees the refusal and sends
            # again is judged on a rate that already holds it.
            self.admission.count_refused(trace.caller.sub)
        report = output.finish(outcome)
        return self.recorder.finish(trace, outcome, report)


def _within_client_maximum(tier: Tier, request: TurnRequest) -> Tier:
    """The tier as this turn sees it: a client that asks for fewer output tokens than the tier's
    per-turn maximum (OpenAI's ``max_tokens``) gets that smaller maximum, which also makes its
    reservation smaller. A client can never ask for more than the tier allows."""
    asked = request.sampling.max_tokens
    if asked is None or asked >= tier.max_output_tokens_per_turn:
        return tier
    return replace(tier, max_output_tokens_per_turn=max(1, asked))


def _prepared_index(deps: TurnDeps, settings: TurnSettings) -> PreparedIndex | None:
    """The in-memory index of prepared keys, where the store can list them."""
    if deps.prepared_keys is None:
        return None
    return PreparedIndex(
        deps.prepared_keys.prepared_keys, settings.prepared_index_seconds, log=deps.log
    )


def _cancel(call: SpeculativeCall | None, trace: TurnTrace) -> None:
    if call is None:
        return
    call.cancel()
    trace.speculative_cancelled += 1
    trace.speculative_input_tokens += call.input_tokens


# -- the end of every turn ------------------------------------------------------------------
