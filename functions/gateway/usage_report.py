"""What a usage request answers: the caller's tier, its models and the usage of every window.

It reads the user's usage item (or the one a warm function kept) and calls no model, so a page
that reloads can show its figures and model picker at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.access import Caller
from gateway.contract import ErrorCode
from gateway.metering import limits_view
from gateway.ports import StoreUnavailable, TierSource, TurnStore
from gateway.schema import usage_key
from gateway.turn_io import LimitsView, TurnFailed
from gateway.usage_cache import UsageCache


@dataclass(frozen=True)
class UsageReport:
    tier: str
    models: tuple[str, ...]
    default_model: str
    limits: LimitsView


def usage_report(
    caller: Caller,
    tiers: TierSource,
    store: TurnStore,
    cache: UsageCache | None,
    now: int,
) -> UsageReport | TurnFailed:
    """The caller's usage now, or why it cannot be told."""
    try:
        tier = tiers.current().tier_for_groups(caller.groups)
    except Exception:
        return TurnFailed(ErrorCode.INTERNAL_ERROR)
    key = usage_key(caller.sub)
    snapshot = cache.get(key) if cache is not None else None
    if snapshot is None:
        try:
            snapshot = store.read(key, ()).usage
        except StoreUnavailable:
            return TurnFailed(ErrorCode.USAGE_UNAVAILABLE)
        if cache is not None:
            cache.put(key, snapshot)
    return UsageReport(
        tier.name, tuple(tier.models), tier.default_model, limits_view(tier, snapshot.settled(now))
    )
