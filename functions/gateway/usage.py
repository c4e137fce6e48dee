"""One user's usage item: its attributes and their meaning, parsed into a snapshot.

The item (see :mod:`gateway.usage_store` for how it is written) holds:

* ``d#<bucketStart>#i`` / ``d#<bucketStart>#o`` — input/output tokens settled in a 10-minute bucket,
  and ``d#<bucketStart>#u`` what they cost, in nano-dollars (10^-9 USD);
* ``m#<YYYY-MM>#i`` / ``m#<YYYY-MM>#o`` / ``m#<YYYY-MM>#u`` — the same for a calendar month;
* ``c#<YYYY-MM>#r`` / ``c#<YYYY-MM>#w`` — prompt-cache read/write tokens (recorded, not limited);
* ``r#<reservationId>`` — a live reservation ``{i, o, u, exp, b, m}`` (``u``: its worst-case cost);
* ``q#<bucketStart>`` — requests started in a 10-second bucket (see :mod:`gateway.rates`);
* ``t#<turnKey>`` — a recent client turn id, ``"<firstSeen>/<reservationId>"``;
* ``k#<conversationKey>`` — a conversation the model counted, ``"<expiresAt>/<tokens>"``: the
  input plus output tokens of the turn that ended with exactly these messages
  (:mod:`gateway.counted`), so the next turn of that conversation reserves only its new text;
* ``tokensValidAfter`` — set by an operator's block (:mod:`gateway.blocks`): tokens whose user
  signed in at or before this time (epoch seconds) are refused;
* ``version`` — bumped by every write (reserve, settle, release), the optimistic-concurrency
  token: an item with a given version has exactly one content.

Because every write bumps the version, a snapshot of the item is exact for as long as its version
is current, which is what lets a warm function plan a reservation on the item as it last saw it
(:class:`gateway.usage_cache.UsageCache`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.blocks import TOKENS_VALID_AFTER
from gateway.windows import (
    TURN_ID_SECONDS,
    bucket_start,
    daily_window_start,
    in_daily_window,
    in_rate_window,
    month_key,
    previous_month_key,
)

BUCKET_PREFIX = "d#"
MONTH_PREFIX = "m#"
CACHE_PREFIX = "c#"
RESERVATION_PREFIX = "r#"
REQUEST_PREFIX = "q#"
TURN_PREFIX = "t#"
#: The direction suffix of a cost attribute (``d#<bucket>#u``, ``m#<month>#u``).
COST = "u"
CONVERSATION_PREFIX = "k#"
VERSION = "version"

#: Stale attributes pruned per reservation write, to keep the update expression small.
MAX_PRUNED_PER_WRITE = 64


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


def conversation_attribute(key: str) -> str:
    return f"{CONVERSATION_PREFIX}{key}"


#: Counted conversations kept per user (the newest; each is a few dozen bytes).
MAX_COUNTED_CONVERSATIONS = 32


@dataclass(frozen=True)
class TokenUsage:
    """Tokens one model call consumed, as the model reported them (or as estimated)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    #: What the call cost, in nano-dollars (0 where the model has no price).
    cost_nano: int = 0


@dataclass(frozen=True)
class CountedConversation:
    """A conversation whose tokens the model counted, to record with a settlement."""

    key: str
    tokens: int
    expires_at: int

    def to_attribute(self) -> str:
        return f"{self.expires_at}/{self.tokens}"


@dataclass(frozen=True)
class Reservation:
    """A turn's worst case, held against the user's limits until settled or released."""

    id: str
    input_tokens: int
    output_tokens: int
    expires_at: int
    bucket: int
    month: str
    #: The worst case's cost in nano-dollars (0 where the model has no price).
    cost: int = 0

    def to_attribute(self) -> dict[str, Any]:
        attribute: dict[str, Any] = {
            "i": self.input_tokens,
            "o": self.output_tokens,
            "exp": self.expires_at,
            "b": self.bucket,
            "m": self.month,
        }
        if self.cost:
            attribute["u"] = self.cost
        return attribute

    @classmethod
    def from_attribute(cls, reservation_id: str, value: Mapping[str, Any]) -> Reservation:
        return cls(
            id=reservation_id,
            input_tokens=int(value.get("i", 0)),
            output_tokens=int(value.get("o", 0)),
            expires_at=int(value.get("exp", 0)),
            bucket=int(value.get("b", 0)),
            month=str(value.get("m", "")),
            cost=int(value.get("u", 0)),
        )

    def live_at(self, now: int) -> bool:
        return self.expires_at > now


@dataclass(frozen=True)
class UsageSnapshot:
    """One user's usage item as read (``exists`` is False when the user has none yet)."""

    exists: bool = False
    version: int = 0
    buckets: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    #: Nano-dollars settled per 10-minute bucket and per month.
    bucket_costs: Mapping[int, int] = field(default_factory=dict)
    month_costs: Mapping[str, int] = field(default_factory=dict)
    months: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    cache_months: frozenset[str] = frozenset()
    reservations: Mapping[str, Reservation] = field(default_factory=dict)
    #: Requests started per 10-second bucket (bucket start -> count).
    requests: Mapping[int, int] = field(default_factory=dict)
    #: Recent client turn ids (turn key -> ``"<firstSeen>/<reservationId>"``).
    turns: Mapping[str, str] = field(default_factory=dict)
    #: Counted conversations (conversation key -> (tokens, expiresAt)).
    conversations: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    #: The block's time (0: never blocked), see :mod:`gateway.blocks`.
    tokens_valid_after: int = 0

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> UsageSnapshot:
        """Parse a usage item (plain Python values, numbers as int/Decimal)."""
        if not item:
            return cls()
        parsed = _ItemParts()
        for name, value in item.items():
            parsed.take(name, value)
        return cls(
            exists=True,
            version=int(item.get(VERSION, 0)),
            buckets={b: (v[0], v[1]) for b, v in parsed.buckets.items()},
            months={m: (v[0], v[1]) for m, v in parsed.months.items()},
            cache_months=frozenset(parsed.cache_months),
            reservations=parsed.reservations,
            requests=parsed.requests,
            turns=parsed.turns,
            conversations=parsed.conversations,
            bucket_costs=parsed.bucket_costs,
            month_costs=parsed.month_costs,
            tokens_valid_after=int(item.get(TOKENS_VALID_AFTER, 0) or 0),
        )

    def counted(self, key: str | None, now: int) -> int | None:
        """The tokens the model counted for a conversation ending with exactly the messages
        ``key`` names, while that count is kept."""
        if key is None:
            return None
        found = self.conversations.get(key)
        return found[0] if found is not None and found[1] > now else None

    def settled(self, now: int) -> dict[str, int]:
        """Tokens (and nano-dollars) settled in each window at ``now``, reservations not
        included."""
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
            "dailyUsd": sum(c for b, c in self.bucket_costs.items() if in_daily_window(b, now)),
            "monthlyUsd": self.month_costs.get(month_key(now), 0),
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
                used["dailyUsd"] += r.cost
            if r.month == current_month:
                used["monthlyInputTokens"] += r.input_tokens
                used["monthlyOutputTokens"] += r.output_tokens
                used["monthlyUsd"] += r.cost
        return used

    def stale_attributes(self, now: int) -> list[str]:
        """Attributes that no longer count for anything: rolled-off buckets, months before the
        previous one, expired reservations. Pruned by the next reservation write."""
        oldest_kept_month = previous_month_key(now)
        stale: list[str] = []
        for r in self.reservations.values():
            if not r.live_at(now):
                stale.append(reservation_attribute(r.id))
        for bucket in sorted(set(self.buckets) | set(self.bucket_costs)):
            if bucket < daily_window_start(now):
                stale += [bucket_attribute(bucket, d) for d in ("i", "o", COST)]
        for month in sorted(set(self.months) | set(self.month_costs)):
            if month < oldest_kept_month:
                stale += [month_attribute(month, d) for d in ("i", "o", COST)]
        for month in sorted(self.cache_months):
            if month < oldest_kept_month:
                stale += [cache_attribute(month, "r"), cache_attribute(month, "w")]
        stale += self._stale_rate_attributes(now)
        stale += self._stale_conversations(now)
        return stale[:MAX_PRUNED_PER_WRITE]

    def _stale_conversations(self, now: int) -> list[str]:
        """Expired counts, and the oldest beyond :data:`MAX_COUNTED_CONVERSATIONS`."""
        newest = sorted(self.conversations.items(), key=lambda kv: kv[1][1], reverse=True)
        return [
            conversation_attribute(key)
            for i, (key, (_, expires)) in enumerate(newest)
            if expires <= now or i >= MAX_COUNTED_CONVERSATIONS
        ]

    def _stale_rate_attributes(self, now: int) -> list[str]:
        """Request buckets out of the rate window and turn ids older than 15 minutes."""
        stale = [request_attribute(b) for b in sorted(self.requests) if not in_rate_window(b, now)]
        for key, mark in sorted(self.turns.items()):
            seen = mark.partition("/")[0]
            if not seen.isdigit() or int(seen) <= now - TURN_ID_SECONDS:
                stale.append(turn_attribute(key))
        return stale

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
        bucket_costs, month_costs = dict(self.bucket_costs), dict(self.month_costs)
        if usage.cost_nano:
            bucket_costs[bucket] = bucket_costs.get(bucket, 0) + usage.cost_nano
            month_costs[month] = month_costs.get(month, 0) + usage.cost_nano
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
            conversations=self.conversations,
            bucket_costs=bucket_costs,
            month_costs=month_costs,
            tokens_valid_after=self.tokens_valid_after,
        )


def _counted(value: str) -> tuple[int, int] | None:
    expires, _, tokens = value.partition("/")
    if not (expires.isdigit() and tokens.isdigit()):
        return None
    return int(tokens), int(expires)


@dataclass
class _ItemParts:
    """The attributes of a usage item, sorted by kind as they are read."""

    buckets: dict[int, list[int]] = field(default_factory=dict)
    months: dict[str, list[int]] = field(default_factory=dict)
    bucket_costs: dict[int, int] = field(default_factory=dict)
    month_costs: dict[str, int] = field(default_factory=dict)
    cache_months: set[str] = field(default_factory=set)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    requests: dict[int, int] = field(default_factory=dict)
    turns: dict[str, str] = field(default_factory=dict)
    conversations: dict[str, tuple[int, int]] = field(default_factory=dict)

    def take(self, name: str, value: Any) -> None:
        if name.startswith(BUCKET_PREFIX):
            start, _, direction = name[len(BUCKET_PREFIX) :].partition("#")
            if start.isdigit():
                self._amount(int(start), direction, value, self.buckets, self.bucket_costs)
        elif name.startswith(MONTH_PREFIX):
            month, _, direction = name[len(MONTH_PREFIX) :].partition("#")
            self._amount(month, direction, value, self.months, self.month_costs)
        elif name.startswith(CACHE_PREFIX):
            self.cache_months.add(name[len(CACHE_PREFIX) :].partition("#")[0])
        elif name.startswith(RESERVATION_PREFIX) and isinstance(value, Mapping):
            rid = name[len(RESERVATION_PREFIX) :]
            self.reservations[rid] = Reservation.from_attribute(rid, value)
        elif name.startswith(REQUEST_PREFIX):
            start = name[len(REQUEST_PREFIX) :]
            if start.isdigit():
                self.requests[int(start)] = int(value)
        elif name.startswith(TURN_PREFIX):
            self.turns[name[len(TURN_PREFIX) :]] = str(value)
        elif name.startswith(CONVERSATION_PREFIX):
            counted = _counted(str(value))
            if counted is not None:
                self.conversations[name[len(CONVERSATION_PREFIX) :]] = counted

    @staticmethod
    def _amount(
        key: Any, direction: str, value: Any, tokens: dict[Any, list[int]], costs: dict[Any, int]
    ) -> None:
        if direction == COST:
            costs[key] = int(value)
        elif direction in ("i", "o"):
            tokens.setdefault(key, [0, 0])[0 if direction == "i" else 1] = int(value)
