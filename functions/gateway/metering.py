"""Token metering: what a user has used in each window and whether a turn's worst case still fits.

Pure logic over one user's usage item (see :mod:`gateway.usage_store` for how it is stored):

* ``d#<bucketStart>#i`` / ``d#<bucketStart>#o`` — input/output tokens settled in a 10-minute bucket;
* ``m#<YYYY-MM>#i`` / ``m#<YYYY-MM>#o`` — input/output tokens settled in a calendar month;
* ``c#<YYYY-MM>#r`` / ``c#<YYYY-MM>#w`` — prompt-cache read/write tokens (recorded, not limited);
* ``r#<reservationId>`` — a live reservation ``{i, o, exp, b, m}``;
* ``q#<bucketStart>`` — requests started in a 10-second bucket (see :mod:`gateway.rates`);
* ``t#<turnKey>`` — a recent client turn id, ``"<firstSeen>/<reservationId>"``;
* ``version`` — bumped by every write (reserve, settle, release), the optimistic-concurrency
  token: an item with a given version has exactly one content.

A turn is admitted by reserving its worst case (input estimate + the output it may produce)
with a write conditioned on ``version``, so concurrent turns of one user can never together
pass a limit. Reservations count until they are settled, released or expire.

Because every write bumps the version, a snapshot of the item is exact for as long as its version
is current: :class:`UsageCache` keeps each user's last known snapshot in a warm function, and a
reservation planned on it lands only if the item is still exactly that snapshot.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.tiers import WINDOWS, Tier
from gateway.windows import (
    DAY_SECONDS,
    bucket_start,
    daily_window_start,
    in_daily_window,
    leaves_daily_window,
    month_key,
    next_month_start,
    previous_month_key,
)

BUCKET_PREFIX = "d#"
MONTH_PREFIX = "m#"
CACHE_PREFIX = "c#"
RESERVATION_PREFIX = "r#"
REQUEST_PREFIX = "q#"
TURN_PREFIX = "t#"
VERSION = "version"

#: How long a crashed invocation's reservation keeps counting (Lambda's longest run).
DEFAULT_RESERVATION_SECONDS = 900
#: Stale attributes pruned per reservation write, to keep the update expression small.
MAX_PRUNED_PER_WRITE = 64
#: Users whose last known usage a warm function keeps (a snapshot is a few tens of KB at most).
USAGE_CACHE_SIZE = 256

_INPUT_WINDOWS = ("dailyInputTokens", "monthlyInputTokens")
_OUTPUT_WINDOWS = ("dailyOutputTokens", "monthlyOutputTokens")


def bucket_attribute(bucket: int, direction: str) -> str:
    return f"{BUCKET_PREFIX}{bucket}#{direction}"


def month_attribute(month: str, direction: str) -> str:
    return f"{MONTH_PREFIX}{month}#{direction}"


def cache_attribute(month: str, kind: str) -> str:
    return f"{CACHE_PREFIX}{month}#{kind}"


def reservation_attribute(reservation_id: str) -> str:
    return f"{RESERVATION_PREFIX}{reservation_id}"


def request_attribute(bucket: int) -> str:
    return f"{REQUEST_PREFIX}{bucket}"


def turn_attribute(turn_key: str) -> str:
    return f"{TURN_PREFIX}{turn_key}"


@dataclass(frozen=True)
class TokenUsage:
    """Tokens one model call consumed, as the model reported them (or as estimated)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True)
class Reservation:
    """A turn's worst case, held against the user's limits until settled or released."""

    id: str
    input_tokens: int
    output_tokens: int
    expires_at: int
    bucket: int
    month: str

    def to_attribute(self) -> dict[str, Any]:
        return {
            "i": self.input_tokens,
            "o": self.output_tokens,
            "exp": self.expires_at,
            "b": self.bucket,
            "m": self.month,
        }

    @classmethod
    def from_attribute(cls, reservation_id: str, value: Mapping[str, Any]) -> Reservation:
        return cls(
            id=reservation_id,
            input_tokens=int(value.get("i", 0)),
            output_tokens=int(value.get("o", 0)),
            expires_at=int(value.get("exp", 0)),
            bucket=int(value.get("b", 0)),
            month=str(value.get("m", "")),
        )

    def live_at(self, now: int) -> bool:
        return self.expires_at > now


@dataclass(frozen=True)
class UsageSnapshot:
    """One user's usage item as read (``exists`` is False when the user has none yet)."""

    exists: bool = False
    version: int = 0
    buckets: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    months: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    cache_months: frozenset[str] = frozenset()
    reservations: Mapping[str, Reservation] = field(default_factory=dict)
    #: Requests started per 10-second bucket (bucket start -> count).
    requests: Mapping[int, int] = field(default_factory=dict)
    #: Recent client turn ids (turn key -> ``"<firstSeen>/<reservationId>"``).
    turns: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> UsageSnapshot:
        """Parse a usage item (plain Python values, numbers as int/Decimal)."""
        if not item:
            return cls()
        buckets: dict[int, list[int]] = {}
        months: dict[str, list[int]] = {}
        cache_months: set[str] = set()
        reservations: dict[str, Reservation] = {}
        requests: dict[int, int] = {}
        turns: dict[str, str] = {}
        for name, value in item.items():
            if name.startswith(BUCKET_PREFIX):
                start, _, direction = name[len(BUCKET_PREFIX) :].partition("#")
                if start.isdigit() and direction in ("i", "o"):
                    slot = buckets.setdefault(int(start), [0, 0])
                    slot[0 if direction == "i" else 1] = int(value)
            elif name.startswith(MONTH_PREFIX):
                month, _, direction = name[len(MONTH_PREFIX) :].partition("#")
                if direction in ("i", "o"):
                    slot = months.setdefault(month, [0, 0])
                    slot[0 if direction == "i" else 1] = int(value)
            elif name.startswith(CACHE_PREFIX):
                cache_months.add(name[len(CACHE_PREFIX) :].partition("#")[0])
            elif name.startswith(RESERVATION_PREFIX) and isinstance(value, Mapping):
                rid = name[len(RESERVATION_PREFIX) :]
                reservations[rid] = Reservation.from_attribute(rid, value)
            elif name.startswith(REQUEST_PREFIX):
                start = name[len(REQUEST_PREFIX) :]
                if start.isdigit():
                    requests[int(start)] = int(value)
            elif name.startswith(TURN_PREFIX):
                turns[name[len(TURN_PREFIX) :]] = str(value)
        return cls(
            exists=True,
            version=int(item.get(VERSION, 0)),
            buckets={b: (v[0], v[1]) for b, v in buckets.items()},
            months={m: (v[0], v[1]) for m, v in months.items()},
            cache_months=frozenset(cache_months),
            reservations=reservations,
            requests=requests,
            turns=turns,
        )

    def settled(self, now: int) -> dict[str, int]:
        """Tokens settled in each window at ``now`` (reservations not included)."""
        daily_in = daily_out = 0
        for bucket, (i, o) in self.buckets.items():
            if in_daily_window(bucket, now):
                daily_in += i
                daily_out += o
        month_in, month_out = self.months.get(month_key(now), (0, 0))
        return {
            "dailyInputTokens": daily_in,
            "dailyOutputTokens": daily_out,
            "monthlyInputTokens": month_in,
            "monthlyOutputTokens": month_out,
        }

    def live_reservations(self, now: int) -> list[Reservation]:
        return [r for r in self.reservations.values() if r.live_at(now)]

    def committed(self, now: int) -> dict[str, int]:
        """Settled tokens plus every live reservation that counts in each window at ``now``."""
        used = self.settled(now)
        current_month = month_key(now)
        for r in self.live_reservations(now):
            if in_daily_window(r.bucket, now):
                used["dailyInputTokens"] += r.input_tokens
                used["dailyOutputTokens"] += r.output_tokens
            if r.month == current_month:
                used["monthlyInputTokens"] += r.input_tokens
                used["monthlyOutputTokens"] += r.output_tokens
        return used

    def stale_attributes(self, now: int) -> list[str]:
        """Attributes that no longer count for anything: rolled-off buckets, months before the
        previous one, expired reservations. Pruned by the next reservation write."""
        oldest_kept_month = previous_month_key(now)
        stale: list[str] = []
        for r in self.reservations.values():
            if not r.live_at(now):
                stale.append(reservation_attribute(r.id))
        for bucket in sorted(self.buckets):
            if bucket < daily_window_start(now):
                stale += [bucket_attribute(bucket, "i"), bucket_attribute(bucket, "o")]
        for month in sorted(self.months):
            if month < oldest_kept_month:
                stale += [month_attribute(month, "i"), month_attribute(month, "o")]
        for month in sorted(self.cache_months):
            if month < oldest_kept_month:
                stale += [cache_attribute(month, "r"), cache_attribute(month, "w")]
        from gateway.rates import stale_rate_attributes  # the rate rules own their attributes

        stale += stale_rate_attributes(self, now)
        return stale[:MAX_PRUNED_PER_WRITE]

    def with_settlement(
        self, reservation: Reservation | None, usage: TokenUsage, now: int
    ) -> UsageSnapshot:
        """This snapshot after settling ``usage`` (at the reservation's bucket and month)."""
        bucket = reservation.bucket if reservation else bucket_start(now)
        month = reservation.month if reservation else month_key(now)
        buckets = dict(self.buckets)
        i, o = buckets.get(bucket, (0, 0))
        buckets[bucket] = (i + usage.input_tokens, o + usage.output_tokens)
        months = dict(self.months)
        i, o = months.get(month, (0, 0))
        months[month] = (i + usage.input_tokens, o + usage.output_tokens)
        reservations = {
            k: v for k, v in self.reservations.items() if not reservation or k != reservation.id
        }
        return UsageSnapshot(
            exists=True,
            version=self.version,
            buckets=buckets,
            months=months,
            cache_months=self.cache_months,
            reservations=reservations,
            requests=self.requests,
            turns=self.turns,
        )


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


@dataclass(frozen=True)
class Refusal:
    """A turn that does not fit: the window that refuses it and when it could fit again."""

    window: str
    resets_at: int
    used: int
    allowed: int


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


def charged_usage(reservation: Reservation | None, reported: TokenUsage) -> Charge:
    """The usage to store for a turn: never more than it reserved in either direction, so the
    windows it was admitted into stay within their limits whatever the model reports. (A turn
    metered fail-open has no reservation and stores what was reported.)"""
    if reservation is None:
        return Charge(reported)
    input_tokens = min(reported.input_tokens, reservation.input_tokens)
    output_tokens = min(reported.output_tokens, reservation.output_tokens)
    return Charge(
        TokenUsage(
            input_tokens,
            output_tokens,
            reported.cache_read_tokens,
            reported.cache_write_tokens,
        ),
        overrun_input_tokens=reported.input_tokens - input_tokens,
        overrun_output_tokens=reported.output_tokens - output_tokens,
    )


def limits_view(tier: Tier, used: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """The ``limits`` object of the wire contract: ``{window: {"used": n, "allowed": n}}``."""
    return {w: {"used": int(used.get(w, 0)), "allowed": tier.limit(w)} for w in WINDOWS}


def plan_turn(
    snapshot: UsageSnapshot,
    tier: Tier,
    now: int,
    input_bound: int,
    reservation_id: str,
    reservation_seconds: int = DEFAULT_RESERVATION_SECONDS,
) -> Admission | Refusal:
    """Admit a turn whose worst case fits every window, or say which window refuses it.

    The worst case is the input bound (:func:`gateway.token_bound.input_token_bound`) plus the
    smaller of the tier's per-turn output maximum and the output headroom left in both output
    windows; that smaller value is also the turn's ``maxTokens``, so even a turn that uses all
    of it stays within every limit.
    """
    used = snapshot.committed(now)
    refusals: list[Refusal] = []
    for window in _INPUT_WINDOWS:
        if used[window] + input_bound > tier.limit(window):
            refusals.append(_refusal(snapshot, tier, now, window, used[window], input_bound))
    headroom = min(tier.limit(w) - used[w] for w in _OUTPUT_WINDOWS)
    if headroom < 1:
        for window in _OUTPUT_WINDOWS:
            if tier.limit(window) - used[window] < 1:
                refusals.append(_refusal(snapshot, tier, now, window, used[window], 1))
    if refusals:
        # The latest reset is the earliest moment the turn could fit in every window.
        return max(refusals, key=lambda r: r.resets_at)
    max_output = min(tier.max_output_tokens_per_turn, headroom)
    reservation = Reservation(
        id=reservation_id,
        input_tokens=input_bound,
        output_tokens=max_output,
        expires_at=now + reservation_seconds,
        bucket=bucket_start(now),
        month=month_key(now),
    )
    return Admission(
        reservation=reservation,
        max_output_tokens=max_output,
        prune=tuple(snapshot.stale_attributes(now)),
    )


def _refusal(
    snapshot: UsageSnapshot, tier: Tier, now: int, window: str, used: int, need: int
) -> Refusal:
    allowed = tier.limit(window)
    if window.startswith("monthly"):
        resets_at = next_month_start(now)
    else:
        resets_at = _daily_fit_time(snapshot, now, window, used + need - allowed)
    return Refusal(window=window, resets_at=resets_at, used=used, allowed=allowed)


def _daily_fit_time(snapshot: UsageSnapshot, now: int, window: str, excess: int) -> int:
    """The first instant at which enough of the daily window's usage has rolled off (buckets
    leaving the trailing 24 h, live reservations expiring) to free ``excess`` tokens."""
    side = 0 if window == "dailyInputTokens" else 1
    releases: list[tuple[int, int]] = [
        (leaves_daily_window(b), amounts[side])
        for b, amounts in snapshot.buckets.items()
        if in_daily_window(b, now) and amounts[side] > 0
    ]
    releases += [
        (min(r.expires_at, leaves_daily_window(r.bucket)), (r.input_tokens, r.output_tokens)[side])
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


class UsageCache:
    """The last known usage snapshot of recently seen users, in one warm function (thread-safe,
    least recently used first out).

    A snapshot is put here only as the store returned it — a consistent read, the current item
    a losing reservation got back, the item a settle left — so each is exact at its version.
    It saves the read before a reservation: the reservation is conditioned on the version, so if
    the item changed meanwhile it writes nothing and returns the item as it now is.
    """

    def __init__(self, max_users: int = USAGE_CACHE_SIZE) -> None:
        self._max = max(1, max_users)
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[str, UsageSnapshot] = OrderedDict()

    def get(self, user_key: str) -> UsageSnapshot | None:
        with self._lock:
            snapshot = self._snapshots.get(user_key)
            if snapshot is not None:
                self._snapshots.move_to_end(user_key)
            return snapshot

    def put(self, user_key: str, snapshot: UsageSnapshot) -> None:
        with self._lock:
            known = self._snapshots.get(user_key)
            if known is not None and snapshot.exists and known.version > snapshot.version:
                return  # a concurrent turn of the same user already brought a newer one
            self._snapshots[user_key] = snapshot
            self._snapshots.move_to_end(user_key)
            while len(self._snapshots) > self._max:
                self._snapshots.popitem(last=False)

    def drop(self, user_key: str) -> None:
        with self._lock:
            self._snapshots.pop(user_key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._snapshots)
