"""Admission: whether a chat turn may run, decided before anything is published.

In order: the caller's tier (from the groups AppSync authenticated) and its model allowlist, then
one conditional write on the user's usage item that, at once, reserves the turn's worst case
(:mod:`gateway.metering`), counts the request against the tier's rate, checks its concurrent
turns and records its ``turnId`` (:mod:`gateway.rates`). A warm function plans that write on the
usage item as its last request left it (:class:`gateway.usage_cache.UsageCache`), so the usual
admission is that one request. A refusal is only ever decided on the item as the store returned
it. Events refused before admission cost one unconditional write that counts them.

Admission returns what it decided — the plan, then an :class:`Admitted` turn holding its
reservation as a :class:`gateway.lease.ReservationLease` — or raises
:class:`gateway.turn_io.TurnRefused`; it writes into nobody's state.
"""

from __future__ import annotations

import contextlib
import functools
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from gateway.blocks import Blocked, blocked
from gateway.contract import ErrorCode
from gateway.counted import continuation_bound, history_key
from gateway.lease import ReservationLease
from gateway.metering import Admission, Refusal, estimate_input_tokens, plan_turn
from gateway.ports import StoreUnavailable, TurnLog, TurnState, TurnStore
from gateway.prepared import PreparedResponse, candidate_keys, pick
from gateway.prepared_index import PreparedIndex
from gateway.pricing import ModelPrice
from gateway.rates import (
    Duplicate,
    RateRefusal,
    check_rates,
    find_duplicate,
    rate_bucket,
    turn_key,
    turn_mark,
)
from gateway.refusals import refusal_for
from gateway.schema import usage_key
from gateway.tiers import Tier, TierConfig
from gateway.token_bound import input_token_bound
from gateway.turn_io import TurnFailed, TurnRefused, TurnRequest, refused
from gateway.usage import Reservation, UsageSnapshot, turn_attribute
from gateway.usage_cache import UsageCache

#: The windows a turn's input counts in (the money windows too: input is paid for).
_INPUT_PRICED = frozenset({"dailyInputTokens", "monthlyInputTokens", "dailyUsd", "monthlyUsd"})
#: Reservation attempts when other turns of the same user keep winning the race.
MAX_RESERVE_ATTEMPTS = 24
_SAFE_MODEL = re.compile(r"^[A-Za-z0-9._:/-]{1,128}\Z")


@dataclass(frozen=True)
class TurnPlan:
    """What admission knows before any request: the caller's tier and model, the turn's worst
    case, and — in a warm function — the admission predicted on the user's kept usage item."""

    user_key: str
    tier: Tier
    model_id: str
    input_bound: int
    input_estimate: int
    prepared_keys: tuple[str, ...]
    reservation_id: str
    turn_id: str | None
    known: UsageSnapshot | None
    predicted: Admission | None
    texts: tuple[str, ...] = ()
    #: The key of the conversation before the new message (None: a first message), and that
    #: message's text: a counted history reserves its count plus the new text's bound.
    history_key: str | None = None
    new_text: str = ""
    #: The price the turn is metered at: the dearest of the models it may call (None: unpriced).
    price: ModelPrice | None = None
    #: The request's exact input count, asked of the provider only when the bound does not fit
    #: (called at most once; None: the provider cannot count this model).
    count_input: Callable[[], int | None] | None = None
    #: When the caller's token was signed in (checked against a block; None: not known).
    auth_time: int | None = None

    def input_bound_on(self, snapshot: UsageSnapshot, now: int) -> int:
        """The input this turn reserves against ``snapshot``: the counted history plus the
        new message's bound where the item holds a count, else the bound of everything."""
        known = snapshot.counted(self.history_key, now)
        if known is None:
            return self.input_bound
        return min(self.input_bound, continuation_bound(known, self.new_text))


@dataclass(frozen=True)
class Admitted:
    """An admitted turn: its reservation held as a lease (holding none when metered fail-open
    or served a prepared answer), the usage item it was admitted against, the most output it may
    produce, the prepared answer to serve instead of a model, and the store failures it met."""

    lease: ReservationLease
    snapshot: UsageSnapshot | None
    max_tokens: int
    prepared: PreparedResponse | None = None
    store_failures: int = 0


@dataclass
class TurnAdmission:
    """Plans and decides admissions against the usage store."""

    tiers: Callable[[], TierConfig]
    store: TurnStore
    log: TurnLog
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    usage_cache: UsageCache | None
    reservation_seconds: int
    fail_open: bool = False
    #: The keys of every prepared response (None: look candidates up on every first message).
    prepared_index: PreparedIndex | None = None

    # -- before any request --------------------------------------------------------------------

    def tier_of(self, request: TurnRequest) -> Tier:
        return self.tiers().tier_for_groups(request.caller.groups)

    def plan(
        self,
        request: TurnRequest,
        tier: Tier,
        count_input: Callable[[], int | None] | None = None,
    ) -> TurnPlan:
        """Resolve the model (refusing one outside the tier's allowlist) and predict."""
        model_id = request.model_id or tier.default_model
        if not tier.allows(model_id):
            shown = f"'{model_id}'" if _SAFE_MODEL.match(model_id) else "That model"
            raise refused(
                ErrorCode.MODEL_NOT_ALLOWED,
                f"{shown} is not available on the {tier.name} tier; "
                f"allowed: {', '.join(tier.models)}.",
            )
        texts = (*request.system, *(m.text for m in request.messages))
        keys: tuple[str, ...] = ()
        if tier.cache and len(request.messages) == 1 and not request.system:
            keys = candidate_keys(model_id, request.messages[0].text)
            # A prompt the warm index has no entry for is not looked up at all.
            if self.prepared_index is not None and self.prepared_index.could_serve(keys) is False:
                keys = ()
        user_key = usage_key(request.caller.sub)
        known = self.usage_cache.get(user_key) if self.usage_cache is not None else None
        plan = TurnPlan(
            user_key=user_key,
            tier=tier,
            model_id=model_id,
            input_bound=input_token_bound(texts),
            input_estimate=estimate_input_tokens(texts),
            prepared_keys=keys,
            reservation_id=uuid.uuid4().hex,
            turn_id=request.client_turn_id,
            known=known,
            predicted=None,
            texts=texts,
            history_key=history_key(model_id, request),
            new_text=request.prompt,
            price=_dearest(self.tiers(), (model_id, tier.fallback_model)),
            count_input=functools.cache(count_input) if count_input is not None else None,
            auth_time=request.caller.auth_time,
        )
        if known is not None:
            predicted = self._decide(plan, known, int(self.clock()))
            if isinstance(predicted, Admission):
                return replace(plan, predicted=predicted)
            return replace(plan, known=None)  # refusals are decided on a fresh read only
        return plan

    # -- the admission ---------------------------------------------------------------------

    def admit(
        self, plan: TurnPlan, prepared: Mapping[str, PreparedResponse] | None = None
    ) -> Admitted:
        """Admit the turn or raise :class:`TurnRefused`. ``prepared`` holds the candidates
        already looked up (None: look them up here, with the usage read if there is one)."""
        failures = 0
        state: TurnState | None = None
        kept = False
        try:
            if plan.known is None:
                keys = () if prepared is not None else plan.prepared_keys
                state = self.store.read(plan.user_key, keys)
                self.remember(plan.user_key, state.usage)
            elif plan.prepared_keys and prepared is None:
                state, kept = (
                    TurnState(plan.known, self.store.read_prepared(plan.prepared_keys)),
                    True,
                )
            else:
                state, kept = TurnState(plan.known), True
        except StoreUnavailable as err:
            failures += self._store_failed("read", err)
        found = prepared if prepared is not None else (state.prepared if state else {})
        hit = pick(found, plan.prepared_keys, int(self.clock())) if plan.prepared_keys else None
        if state is None:  # the store failed and the stack meters fail-open
            return Admitted(
                self._lease(plan, None), None, plan.tier.max_output_tokens_per_turn, hit, failures
            )
        admission, snapshot, write_failures = self._write(
            plan, state.usage, kept=kept, prepared=hit is not None
        )
        max_tokens = plan.tier.max_output_tokens_per_turn
        if admission is not None and admission.reservation is not None:
            max_tokens = admission.max_output_tokens
        reservation = admission.reservation if admission is not None else None
        return Admitted(
            self._lease(plan, reservation), snapshot, max_tokens, hit, failures + write_failures
        )

    def _lease(self, plan: TurnPlan, reservation: Reservation | None) -> ReservationLease:
        return ReservationLease(
            self.store,
            plan.user_key,
            reservation,
            cache=self.usage_cache,
            log=self.log,
            price=plan.price,
        )

    def _write(
        self, plan: TurnPlan, snapshot: UsageSnapshot, *, kept: bool, prepared: bool
    ) -> tuple[Admission | None, UsageSnapshot, int]:
        """The conditional write, retried while other turns of the user win the race. ``kept``
        says ``snapshot`` is the kept item the plan predicted on (not a fresh read)."""
        decision: Admission | Refusal | RateRefusal | Duplicate | Blocked | None = (
            plan.predicted if kept and not prepared else None
        )
        first_was_kept = decision is not None
        for attempt in range(MAX_RESERVE_ATTEMPTS):
            now = int(self.clock())
            if decision is None:
                decision = self._decide(plan, snapshot, now, prepared=prepared)
            if not isinstance(decision, Admission):
                raise refusal_for(decision, plan.tier, snapshot, now)
            try:
                current = self.store.reserve(plan.user_key, decision, snapshot, now)
            except StoreUnavailable as err:
                self.forget(plan.user_key)
                # The write may have landed with only its answer lost (a timeout): take the
                # reservation back now rather than let it hold the user's headroom until it
                # expires. Removing a reservation that was never written changes nothing.
                with contextlib.suppress(StoreUnavailable):
                    self.store.release(plan.user_key, plan.reservation_id)
                return None, snapshot, self._store_failed("reserve", err)
            if current is None or _landed(current, plan):
                # Admitted; the second case is a write retried by botocore after its first
                # attempt landed (the same ids make the retry harmless). The item has moved on
                # from the kept snapshot; the settle brings the new one.
                self.forget(plan.user_key)
                return decision, snapshot, 0
            snapshot = current
            self.remember(plan.user_key, current)
            if attempt > 0 or not first_was_kept:
                # Full jitter, doubling up to a cap: many turns of one user racing (a script, a
                # retry storm) spread out instead of failing together after a few close misses.
                # A kept snapshot that was merely out of date is retried at once.
                self.sleep(random.uniform(0, min(0.25, 0.01 * 2**attempt)))
            decision = None
        self.log.warning("reservation kept losing races", extra={"user": plan.user_key})
        raise refused(ErrorCode.USAGE_UNAVAILABLE)

    def _decide(
        self, plan: TurnPlan, snapshot: UsageSnapshot, now: int, *, prepared: bool = False
    ) -> Admission | Refusal | RateRefusal | Duplicate | Blocked:
        # First: a blocked account's turn is refused whatever else it would have been.
        block = blocked(snapshot.tokens_valid_after, plan.auth_time)
        if block is not None:
            return block
        duplicate = find_duplicate(snapshot, plan.turn_id, plan.reservation_id, now)
        if duplicate is not None:
            return duplicate
        rate = check_rates(snapshot, plan.tier, now)
        if rate is not None:
            return rate
        if prepared:
            # A prepared answer costs no tokens: its write counts the request and its turn id.
            admission = Admission(None, 0, tuple(snapshot.stale_attributes(now)))
        else:
            tokens = _reserve_tokens(plan, snapshot, now, self.reservation_seconds)
            if isinstance(tokens, Refusal):
                return tokens
            admission = tokens
        key = turn_key(plan.turn_id) if plan.turn_id is not None else None
        prune = admission.prune
        if key is not None:
            prune = tuple(p for p in prune if p != turn_attribute(key))
        return replace(
            admission,
            prune=prune,
            request_bucket=rate_bucket(now),
            turn_key=key,
            turn_mark=turn_mark(now, plan.reservation_id),
            signed_in_at=plan.auth_time,
        )

    # -- requests refused before admission -----------------------------------------------------

    def count_refused(self, sub: str) -> None:
        """Count an event refused before admission against the user's request rate (one write;
        a store failure only loses the count)."""
        user_key = usage_key(sub)
        now = int(self.clock())
        try:
            self.remember(user_key, self.store.count_request(user_key, rate_bucket(now), now))
        except Exception as err:
            self.forget(user_key)
            self.log.warning("refused request not counted", extra={"reason": str(err)[:200]})

    # -- the kept snapshots --------------------------------------------------------------------

    def remember(self, user_key: str, snapshot: UsageSnapshot) -> None:
        if self.usage_cache is not None:
            self.usage_cache.put(user_key, snapshot)

    def forget(self, user_key: str) -> None:
        if self.usage_cache is not None:
            self.usage_cache.drop(user_key)

    def _store_failed(self, step: str, err: Exception) -> int:
        """Log a store failure and refuse the turn, unless the stack meters fail-open; returns
        the failures to count."""
        self.log.error(
            "usage store unavailable",
            extra={"step": step, "reason": str(err), "fail_open": self.fail_open},
        )
        if not self.fail_open:
            raise TurnRefused(TurnFailed(ErrorCode.USAGE_UNAVAILABLE), store_failures=1)
        return 1


def _reserve_tokens(
    plan: TurnPlan, snapshot: UsageSnapshot, now: int, reservation_seconds: int
) -> Admission | Refusal:
    """The reservation at the input bound; where that does not fit an input or money window
    and the provider can count the request exactly, at the exact count instead."""
    bound = plan.input_bound_on(snapshot, now)
    tokens = plan_turn(
        snapshot,
        plan.tier,
        now,
        bound,
        plan.reservation_id,
        reservation_seconds,
        plan.price,
    )
    if not isinstance(tokens, Refusal) or tokens.window not in _INPUT_PRICED:
        return tokens
    exact = plan.count_input() if plan.count_input is not None else None
    if exact is None or exact >= bound:
        return tokens
    return plan_turn(
        snapshot,
        plan.tier,
        now,
        exact,
        plan.reservation_id,
        reservation_seconds,
        plan.price,
    )


def _dearest(config: TierConfig, models: tuple[str | None, ...]) -> ModelPrice | None:
    """The highest input and output price among ``models`` (None when any is unpriced and the
    turn cannot be costed)."""
    prices = [config.price_of(m) for m in models if m]
    if not prices or any(p is None for p in prices):
        return None
    known = [p for p in prices if p is not None]
    return ModelPrice(max(p.input_per_1k for p in known), max(p.output_per_1k for p in known))


def _landed(current: UsageSnapshot, plan: TurnPlan) -> bool:
    """Whether the item already holds this turn's own write (a retried request that landed)."""
    if plan.reservation_id in current.reservations:
        return True
    if plan.turn_id is None:
        return False
    mark = current.turns.get(turn_key(plan.turn_id), "")
    return mark.partition("/")[2] == plan.reservation_id
