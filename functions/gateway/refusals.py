"""What a refused turn tells its user: which rule refused it, and when it could be admitted.

Every message is for humans and states facts the gateway knows (the window, the limit, the
time it resets); the fields beside it are what a client acts on.
"""

from __future__ import annotations

from gateway.blocks import Blocked
from gateway.contract import ErrorCode, new_turn_id
from gateway.metering import Refusal, limits_view, usd
from gateway.rates import REQUESTS_PER_MINUTE, Duplicate, RateRefusal
from gateway.tiers import MONEY_WINDOWS, Tier
from gateway.turn_io import TurnFailed, TurnRefused, refused
from gateway.usage import UsageSnapshot
from gateway.windows import iso_utc

_WINDOW_NAMES = {
    "dailyInputTokens": "daily input",
    "dailyOutputTokens": "daily output",
    "monthlyInputTokens": "monthly input",
    "monthlyOutputTokens": "monthly output",
    "dailyUsd": "daily spending",
    "monthlyUsd": "monthly spending",
}


def refusal_for(
    decision: Refusal | RateRefusal | Duplicate | Blocked,
    tier: Tier,
    snapshot: UsageSnapshot,
    now: int,
) -> TurnRefused:
    """The refusal a user is told, for a turn of a blocked account, a duplicate, one over a
    request rate, or one that does not fit a token or money window."""
    if isinstance(decision, Blocked):
        return refused(ErrorCode.ACCOUNT_BLOCKED)
    if isinstance(decision, Duplicate):
        return TurnRefused(
            TurnFailed(
                ErrorCode.DUPLICATE_TURN,
                f"Turn '{decision.turn_id}' was already received at "
                f"{iso_utc(decision.first_seen)}; its answer is on your channel under that "
                "turnId. Send a new turnId to ask again.",
                fields={"duplicateOf": decision.turn_id},
                answer_turn_id=new_turn_id(),
            )
        )
    if isinstance(decision, RateRefusal):
        what = (
            f"{decision.allowed} requests per minute"
            if decision.limit == REQUESTS_PER_MINUTE
            else f"{decision.allowed} turns at a time"
        )
        return refused(
            ErrorCode.RATE_LIMITED,
            f"Your tier allows {what}; retry after {iso_utc(decision.resets_at)}.",
            fields={"limit": decision.limit, "resetsAt": iso_utc(decision.resets_at)},
        )
    return _window_refusal(decision, tier, snapshot, now)


def _window_refusal(
    decision: Refusal, tier: Tier, snapshot: UsageSnapshot, now: int
) -> TurnRefused:
    """``turn_too_large`` while the window has room for a small turn; ``limit_exceeded``
    (with when it resets) only once it has not."""
    name = _WINDOW_NAMES[decision.window]
    money = decision.window in MONEY_WINDOWS
    limits = limits_view(tier, snapshot.committed(now))
    if not decision.used_up:
        needed: int | float = usd(decision.needed) if money else decision.needed
        remaining: int | float = usd(decision.remaining) if money else decision.remaining
        what = (
            f"${needed:.4f} of your {name} allowance, but ${remaining:.4f} is left"
            if money
            else f"up to {needed} {name} tokens, but {remaining} are left in that allowance"
        )
        return refused(
            ErrorCode.TURN_TOO_LARGE,
            f"This turn needs {what}. A shorter message, or a new chat without the earlier "
            "messages, will fit now.",
            window=decision.window,
            limits=limits,
            fields={"needed": needed, "remaining": remaining},
        )
    allowed = f"${usd(decision.allowed):.2f}" if money else str(decision.allowed)
    return refused(
        ErrorCode.LIMIT_EXCEEDED,
        f"You have reached your {name} {'limit' if money else 'token limit'} ({allowed}); you "
        f"can continue after {iso_utc(decision.resets_at)}.",
        window=decision.window,
        resets_at=iso_utc(decision.resets_at),
        limits=limits,
    )
