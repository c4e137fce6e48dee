"""The rules admission applies to a usage snapshot: request rate, concurrent turns, recent turn
ids, the capped charge, and the tier keys that configure them."""

from __future__ import annotations

import pytest
from gateway.metering import charged_usage
from gateway.rates import (
    MAX_CONCURRENT_TURNS,
    REQUESTS_PER_MINUTE,
    check_rates,
    find_duplicate,
    rate_bucket,
    turn_key,
    turn_mark,
)
from gateway.tiers import TierConfigError
from gateway.usage import Reservation, TokenUsage, UsageSnapshot, request_attribute, turn_attribute

from tests.functions.support import TIER_DOCUMENT, tier_config

NOW = 1_795_000_005  # 5 s into a 10-second bucket
FREE = tier_config(requestsPerMinute=3, maxConcurrentTurns=2).tiers["free"]


def snapshot(**item) -> UsageSnapshot:
    return UsageSnapshot.from_item({"pk": "user#x", "version": 1, **item})


def live_reservation(rid: str) -> dict:
    return {"i": 10, "o": 10, "exp": NOW + 900, "b": NOW - NOW % 600, "m": "2026-11"}


def test_requests_in_the_trailing_minute_are_limited_and_say_when_one_more_fits():
    bucket = rate_bucket(NOW)
    item = {request_attribute(bucket - 50): 1, request_attribute(bucket - 20): 2}
    refusal = check_rates(snapshot(**item), FREE, NOW)
    assert refusal is not None and refusal.limit == REQUESTS_PER_MINUTE
    # the oldest bucket leaves the window 60 s after it started
    assert refusal.resets_at == bucket - 50 + 60
    assert check_rates(snapshot(**item), FREE, refusal.resets_at) is None


def test_requests_older_than_a_minute_no_longer_count_and_are_pruned():
    bucket = rate_bucket(NOW)
    item = {request_attribute(bucket - 60): 5, request_attribute(bucket): 2}
    assert check_rates(snapshot(**item), FREE, NOW) is None
    assert snapshot(**item).stale_attributes(NOW) == [request_attribute(bucket - 60)]


def test_live_reservations_are_the_running_turns():
    item = {"r#a": live_reservation("a"), "r#b": live_reservation("b")}
    refusal = check_rates(snapshot(**item), FREE, NOW)
    assert refusal is not None and refusal.limit == MAX_CONCURRENT_TURNS
    assert refusal.resets_at > NOW
    assert check_rates(snapshot(**{"r#a": live_reservation("a")}), FREE, NOW) is None


def test_a_turn_id_seen_in_the_last_fifteen_minutes_is_a_duplicate():
    marks = {turn_attribute(turn_key("t-1")): turn_mark(NOW - 899, "other")}
    duplicate = find_duplicate(snapshot(**marks), "t-1", "mine", NOW)
    assert duplicate is not None and duplicate.first_seen == NOW - 899
    assert find_duplicate(snapshot(**marks), "t-2", "mine", NOW) is None
    assert find_duplicate(snapshot(**marks), "t-1", "mine", NOW + 1) is None  # forgotten
    assert snapshot(**marks).stale_attributes(NOW + 1) == [turn_attribute(turn_key("t-1"))]


def test_a_turns_own_mark_is_not_a_duplicate_of_itself():
    # a write that landed and was retried by botocore finds the turn's own mark
    marks = {turn_attribute(turn_key("t-1")): turn_mark(NOW, "mine")}
    assert find_duplicate(snapshot(**marks), "t-1", "mine", NOW) is None


def test_turn_keys_are_fixed_length_whatever_the_id():
    assert len(turn_key("t")) == len(turn_key("x" * 64)) == 16
    assert turn_key("t-1") != turn_key("t-2")


def test_the_charge_never_passes_the_reservation_and_the_excess_is_counted():
    reservation = Reservation("r", 100, 50, NOW + 900, NOW - NOW % 600, "2026-11")
    charge = charged_usage(reservation, TokenUsage(130, 60, 7, 8))
    assert charge.usage == TokenUsage(100, 50, 7, 8)
    assert (charge.overrun_input_tokens, charge.overrun_output_tokens) == (30, 10)
    within = charged_usage(reservation, TokenUsage(40, 20))
    assert within.usage == TokenUsage(40, 20) and within.overrun_input_tokens == 0


def test_request_limits_default_when_a_tier_does_not_set_them():
    tier = tier_config().tiers["free"]
    assert tier.requests_per_minute == 60 and tier.max_concurrent_turns == 5
    assert tier.stream_flush_ms is None
    assert "requestsPerMinute" not in tier.to_document()


def test_request_limits_and_stream_cadence_round_trip_as_written():
    tier = tier_config(requestsPerMinute=20, maxConcurrentTurns=3, streamFlushMs=100)
    doc = tier.to_document()["tiers"]["free"]
    assert (doc["requestsPerMinute"], doc["maxConcurrentTurns"], doc["streamFlushMs"]) == (
        20,
        3,
        100,
    )
    assert tier.tiers["free"].stream_flush_ms == 100


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("requestsPerMinute", 0),
        ("requestsPerMinute", "10"),
        ("requestsPerMinute", True),
        ("maxConcurrentTurns", -1),
        ("maxConcurrentTurns", 1.5),
        ("streamFlushMs", 5),
        ("streamFlushMs", 60_000),
    ],
)
def test_bad_request_limits_are_refused_naming_the_key(key, value):
    assert TIER_DOCUMENT["tiers"]["free"].get(key) is None
    with pytest.raises(TierConfigError, match=rf"tiers\.free\.{key}:"):
        tier_config(**{key: value})
