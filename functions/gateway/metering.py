"""Token metering: whether a turn's worst case still fits every window of the user's tier.

Pure logic over a :class:`gateway.usage.UsageSnapshot`. A turn is admitted by reserving its worst
case (input bound + the output it may produce) with a write conditioned on the item's ``version``,
so concurrent turns of one user can never together pass a limit. Reservations count until they
are settled, released or expire; a settlement never stores more than its reservation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from gateway.pricing import NANO_PER_USD, ModelPrice
from gateway.tiers import WINDOWS, Tier
from gateway.token_bound import MESSAGE_FRAMING_TOKENS, REQUEST_FRAMING_TOKENS
from gateway.turn_io import LimitsView
from gateway.usage import Reservation, TokenUsage, UsageSnapshot
from gateway.windows import (
    DAY_SECONDS,
    bucket_start,
    in_daily_window,
    leaves_daily_window,
    month_key,
    next_month_start,
)

#: How long a crashed invocation's reservation keeps counting (Lambda's longest run).
DEFAULT_RESERVATION_SECONDS = 900
#: The input of the smallest turn worth sending (a few words, with its framing): a window with
#: this much room left is not "used up", whatever one larger turn needs.
MINIMAL_TURN_INPUT_TOKENS = REQUEST_FRAMING_TOKENS + MESSAGE_FRAMING_TOKENS + 16

_INPUT_WINDOWS = ("dailyInputTokens", "monthlyInputTokens")
_OUTPUT_WINDOWS = ("dailyOutputTokens", "monthlyOutputTokens")


@dataclass(frozen=True)
class Admission:
    """A turn that fits: what its conditional write adds — the reservation (none for a prepared
    answer), the request it counts, its turn id — and the output it may produce."""

    reservation: Reservation | None
    max_output_tokens: int
    prune: tuple[str, ...]
    #: The 10-second bucket whose request count the write increments (None: count nothing).
    request_bucket: int | None = None
    #: The recent-turn attribute the write sets, and its value.
    turn_key: str | None = None
    turn_mark: str = ""
    #: The caller's sign-in time, which the write's condition checks against a block
    #: (:mod:`gateway.blocks`; None: the token names none, so only an unblocked item admits).
    signed_in_at: int | None = None


@dataclass(frozen=True)
class Refusal:
    """A turn that does not fit: the window that refuses it and when it could fit again.

    ``used_up`` is True when even a minimal turn would not fit that window (only waiting
    helps); otherwise the window has room, but not for this turn (``needed`` is what it asks):
    a shorter message, or a new chat, fits now."""

    window: str
    resets_at: int
    used: int
    allowed: int
    used_up: bool = True
    needed: int = 0

    @property
    def remaining(self) -> int:
        return max(0, self.allowed - self.used)


def estimate_input_tokens(texts: Iterable[str]) -> int:
    """A realistic estimate of a request's input tokens (about 3 characters per token plus a
    few tokens of framing per message), charged when a model fails midway without reporting
    its usage. Admission reserves :func:`gateway.token_bound.input_token_bound` instead."""
    total = 0
    for text in texts:
        total += math.ceil(len(text) / 3) + 4
    return max(total, 1)


@dataclass(frozen=True)
class Charge:
    """What a settlement stores: the model's usage, capped at the turn's reservation."""

    usage: TokenUsage
    #: Tokens the model reported beyond the reservation, not stored (an upper bound failed).
    overrun_input_tokens: int = 0
    overrun_output_tokens: int = 0


def charged_usage(
    reservation: Reservation | None, reported: TokenUsage, price: ModelPrice | None = None
) -> Charge:
    """The usage to store for a turn: never more than it reserved in either direction, and its
    cost at ``price`` never more than the reservation's, so the windows it was admitted into stay
    within their limits whatever the model reports. (A turn metered fail-open has no reservation
    and stores what was reported.)"""
    if reservation is None:
        cost = price.cost_nano(reported.input_tokens, reported.output_tokens) if price else 0
        return Charge(replace(reported, cost_nano=cost))
    input_tokens = min(reported.input_tokens, reservation.input_tokens)
    output_tokens = min(reported.output_tokens, reservation.output_tokens)
    cost = price.cost_nano(input_tokens, output_tokens) if price else 0
    if reservation.cost:
        cost = min(cost, reservation.cost)
    return Charge(
        TokenUsage(
            input_tokens,
            output_tokens,
            reported.cache_read_tokens,
            reported.cache_write_tokens,
            cost,
        ),
        overrun_input_tokens=reported.input_tokens - input_tokens,
        overrun_output_tokens=reported.output_tokens - output_tokens,
    )


def limits_view(tier: Tier, used: Mapping[str, int]) -> LimitsView:
    """The ``limits`` object of the wire contract: ``{window: {"used": n, "allowed": n}}``, in
    tokens, plus the tier's money windows in US dollars."""
    view: LimitsView = {w: {"used": int(used.get(w, 0)), "allowed": tier.limit(w)} for w in WINDOWS}
    for window in tier.money_windows:
        view[window] = {
            "used": usd(int(used.get(window, 0))),
            "allowed": usd(tier.money_limit(window) or 0),
        }
    return view


def usd(nano: int) -> float:
    """Nano-dollars as US dollars, to the millionth (what a client shows)."""
    return round(nano / NANO_PER_USD, 6)


def plan_turn(
    snapshot: UsageSnapshot,
    tier: Tier,
    now: int,
    input_bound: int,
    reservation_id: str,
    reservation_seconds: int = DEFAULT_RESERVATION_SECONDS,
    price: ModelPrice | None = None,
) -> Admission | Refusal:
    """Admit a turn whose worst case fits every window, or say which window refuses it.

    The worst case is the input bound plus the smaller of the tier's per-turn output maximum and
    the output headroom left in every output window — and, where the tier sets money windows,
    the output the money left can pay for once the input is paid (at ``price``, the dearest of
    the models the turn may call). That smaller value is also the turn's ``maxTokens``, so even
    a turn that uses all of it stays within every limit.
    """
    used = snapshot.committed(now)
    refusals = _input_refusals(snapshot, tier, now, used, input_bound)
    headroom = min(tier.limit(w) - used[w] for w in _OUTPUT_WINDOWS)
    if headroom < 1:
        for window in _OUTPUT_WINDOWS:
            if tier.limit(window) - used[window] < 1:
                refusals.append(_refusal(snapshot, tier, now, window, used[window], 1))
    max_output = min(tier.max_output_tokens_per_turn, headroom)
    if price is not None:
        money, money_refusals = _money_headroom(snapshot, tier, now, used, input_bound, price)
        max_output = min(max_output, money)
        refusals += money_refusals
    if refusals:
        return _deciding(refusals)
    reservation = Reservation(
        id=reservation_id,
        input_tokens=input_bound,
        output_tokens=max_output,
        expires_at=now + reservation_seconds,
        bucket=bucket_start(now),
        month=month_key(now),
        cost=price.cost_nano(input_bound, max_output) if price is not None else 0,
    )
    return Admission(
        reservation=reservation,
        max_output_tokens=max_output,
        prune=tuple(snapshot.stale_attributes(now)),
    )


def _input_refusals(
    snapshot: UsageSnapshot, tier: Tier, now: int, used: Mapping[str, int], input_bound: int
) -> list[Refusal]:
    refusals: list[Refusal] = []
    for window in _INPUT_WINDOWS:
        if used[window] + input_bound > tier.limit(window):
            refusal = _refusal(snapshot, tier, now, window, used[window], input_bound)
            if used[window] + MINIMAL_TURN_INPUT_TOKENS <= tier.limit(window):
                refusal = replace(refusal, used_up=False, needed=input_bound)
            refusals.append(refusal)
    return refusals


def _money_headroom(
    snapshot: UsageSnapshot,
    tier: Tier,
    now: int,
    used: Mapping[str, int],
    input_bound: int,
    price: ModelPrice,
) -> tuple[int, list[Refusal]]:
    """The most output the tier's money windows can pay for after this turn's input, and the
    windows that cannot pay for the input and one output token."""
    most = tier.max_output_tokens_per_turn
    refusals: list[Refusal] = []
    input_cost = price.input_nano(input_bound)
    smallest = price.cost_nano(MINIMAL_TURN_INPUT_TOKENS, 1)
    per_token = max(1, price.output_nano(1))
    for window in tier.money_windows:
        allowed = tier.money_limit(window) or 0
        left = allowed - used[window]
        need = input_cost + price.output_nano(1)
        if need > left:
            refusal = _money_refusal(snapshot, now, window, used[window], allowed, need)
            if smallest <= left:
                refusal = replace(refusal, used_up=False, needed=need)
            refusals.append(refusal)
            continue
        most = min(most, (left - input_cost) // per_token)
    return most, refusals


def _money_refusal(
    snapshot: UsageSnapshot, now: int, window: str, used: int, allowed: int, need: int
) -> Refusal:
    if window == "monthlyUsd":
        resets_at = next_month_start(now)
    else:
        resets_at = _daily_fit_time(snapshot, now, window, used + need - allowed)
    return Refusal(window=window, resets_at=resets_at, used=used, allowed=allowed)


def _deciding(refusals: list[Refusal]) -> Refusal:
    """What to tell the user: a window used up wins (with the latest reset, the earliest moment
    the turn could fit everywhere); else the window with the least room for what it needs."""
    used_up = [r for r in refusals if r.used_up]
    if used_up:
        return max(used_up, key=lambda r: r.resets_at)
    return min(refusals, key=lambda r: r.remaining / max(r.needed, 1))


def _refusal(
    snapshot: UsageSnapshot, tier: Tier, now: int, window: str, used: int, need: int
) -> Refusal:
    allowed = tier.limit(window)
    if window.startswith("monthly"):
        resets_at = next_month_start(now)
    else:
        resets_at = _daily_fit_time(snapshot, now, window, used + need - allowed)
    return Refusal(window=window, resets_at=resets_at, used=used, allowed=allowed)


def _held(reservation: Reservation, window: str) -> int:
    """What a live reservation holds in a daily window."""
    if window == "dailyUsd":
        return reservation.cost
    return reservation.input_tokens if window == "dailyInputTokens" else reservation.output_tokens


def _daily_fit_time(snapshot: UsageSnapshot, now: int, window: str, excess: int) -> int:
    """The first instant at which enough of the daily window's usage has rolled off (buckets
    leaving the trailing 24 h, live reservations expiring) to free ``excess`` tokens."""
    settled: dict[int, int] = (
        dict(snapshot.bucket_costs)
        if window == "dailyUsd"
        else {
            b: amounts[0 if window == "dailyInputTokens" else 1]
            for b, amounts in snapshot.buckets.items()
        }
    )
    releases: list[tuple[int, int]] = [
        (leaves_daily_window(b), amount)
        for b, amount in settled.items()
        if in_daily_window(b, now) and amount > 0
    ]
    releases += [
        (min(r.expires_at, leaves_daily_window(r.bucket)), _held(r, window))
        for r in snapshot.live_reservations(now)
        if in_daily_window(r.bucket, now)
    ]
    releases.sort()
    freed = 0
    for moment, amount in releases:
        freed += amount
        if freed >= excess:
            return moment
    # Even an empty window cannot hold the request (it is larger than the limit itself).
    return releases[-1][0] if releases else bucket_start(now) + DAY_SECONDS
