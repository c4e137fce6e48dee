"""Per-user request rates, concurrent turns and recent turn ids, read from the usage item.

All three are checked on the same snapshot as the token limits and written by the same
conditional write as the reservation, so they cost no request of their own:

* **requests per minute** — each admitted turn adds one to ``q#<start>``, its 10-second bucket;
  the trailing minute is the current bucket and the five before it. An event that is refused
  before admission (not valid, not the caller's channel, a model outside the tier) costs one
  unconditional write that adds to the same counter, so floods of bad events count too;
* **concurrent turns** — the live reservations on the item;
* **recent turn ids** — ``t#<key>`` per client ``turnId`` seen in the last 15 minutes, the key a
  64-bit hash of the id (collisions between one user's ids in 15 minutes: about 1 in 10^16).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.tiers import Tier
from gateway.usage import UsageSnapshot
from gateway.windows import (
    RATE_BUCKET_SECONDS,
    RATE_WINDOW_SECONDS,
    TURN_ID_SECONDS,
    in_rate_window,
    rate_bucket,
)

__all__ = [
    "RATE_BUCKET_SECONDS",
    "RATE_WINDOW_SECONDS",
    "Duplicate",
    "RateRefusal",
    "check_rates",
    "find_duplicate",
    "rate_bucket",
    "requests_in_window",
    "turn_key",
    "turn_mark",
]
#: When a turn refused for concurrency is told to try again (a running turn may end any time).
CONCURRENCY_RETRY_SECONDS = 2

REQUESTS_PER_MINUTE = "requestsPerMinute"
MAX_CONCURRENT_TURNS = "maxConcurrentTurns"


def turn_key(turn_id: str) -> str:
    """The attribute key of a client turn id (a fixed 16 hex digits, whatever the id)."""
    return hashlib.sha256(turn_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def turn_mark(now: int, reservation_id: str) -> str:
    return f"{now}/{reservation_id}"


@dataclass(frozen=True)
class RateRefusal:
    """A turn over a request limit: which one, and when it could be admitted."""

    limit: str  # REQUESTS_PER_MINUTE or MAX_CONCURRENT_TURNS
    allowed: int
    resets_at: int


@dataclass(frozen=True)
class Duplicate:
    """A turn id this user already started in the last 15 minutes."""

    turn_id: str
    first_seen: int


def requests_in_window(requests: Mapping[int, int], now: int) -> int:
    return sum(n for bucket, n in requests.items() if in_rate_window(bucket, now))


def check_rates(snapshot: UsageSnapshot, tier: Tier, now: int) -> RateRefusal | None:
    """Refuse a turn that would pass the tier's request rate or concurrent turns."""
    allowed = tier.requests_per_minute
    if requests_in_window(snapshot.requests, now) + 1 > allowed:
        return RateRefusal(REQUESTS_PER_MINUTE, allowed, _rate_fit_time(snapshot, now, allowed))
    running = len(snapshot.live_reservations(now))
    if running >= tier.max_concurrent_turns:
        return RateRefusal(
            MAX_CONCURRENT_TURNS, tier.max_concurrent_turns, now + CONCURRENCY_RETRY_SECONDS
        )
    return None


def find_duplicate(
    snapshot: UsageSnapshot, turn_id: str | None, reservation_id: str, now: int
) -> Duplicate | None:
    """The earlier turn with this id, unless the mark is this turn's own (its write landed and
    was retried)."""
    if turn_id is None:
        return None
    mark = snapshot.turns.get(turn_key(turn_id))
    if mark is None:
        return None
    seen, _, by = mark.partition("/")
    first_seen = int(seen) if seen.isdigit() else 0
    if by == reservation_id or first_seen <= now - TURN_ID_SECONDS:
        return None
    return Duplicate(turn_id, first_seen)


def _rate_fit_time(snapshot: UsageSnapshot, now: int, allowed: int) -> int:
    """The first instant at which enough buckets have left the window for one more request."""
    live = sorted((b, n) for b, n in snapshot.requests.items() if in_rate_window(b, now))
    excess = sum(n for _, n in live) + 1 - allowed
    freed = 0
    for bucket, count in live:
        freed += count
        if freed >= excess:
            return bucket + RATE_WINDOW_SECONDS
    return rate_bucket(now) + RATE_WINDOW_SECONDS
