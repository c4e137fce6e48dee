"""UTC window arithmetic and the pure admission logic of metering."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gateway.metering import Refusal, estimate_input_tokens, plan_turn
from gateway.usage import (
    Reservation,
    TokenUsage,
    UsageSnapshot,
    bucket_attribute,
    month_attribute,
    reservation_attribute,
)
from gateway.windows import (
    BUCKET_SECONDS,
    DAY_SECONDS,
    bucket_start,
    daily_window_start,
    in_daily_window,
    iso_utc,
    leaves_daily_window,
    month_key,
    next_month_start,
    previous_month_key,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.functions.support import tier_config


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


# -- windows ------------------------------------------------------------------------------------


def test_a_bucket_starts_on_its_first_second_and_ends_before_the_next():
    # GIVEN the boundary instant 12:10:00 and the instants around it
    boundary = epoch("2025-03-01T12:10:00")
    # THEN the boundary opens a new bucket and the second before it belongs to the previous one
    assert bucket_start(boundary) == boundary
    assert bucket_start(boundary - 1) == boundary - BUCKET_SECONDS
    assert bucket_start(boundary + BUCKET_SECONDS - 1) == boundary


def test_the_daily_window_is_the_current_bucket_and_the_143_before_it():
    now = epoch("2025-03-02T00:05:00")
    current = bucket_start(now)
    assert daily_window_start(now) == current - 143 * BUCKET_SECONDS
    assert in_daily_window(current, now)
    assert in_daily_window(current - 143 * BUCKET_SECONDS, now)
    assert not in_daily_window(current - 144 * BUCKET_SECONDS, now)


def test_a_bucket_rolls_off_exactly_24_hours_after_it_started():
    bucket = epoch("2025-03-01T09:20:00")
    leaves = leaves_daily_window(bucket)
    # THEN it still counts one second before, and not at, the roll-off instant
    assert in_daily_window(bucket, leaves - 1)
    assert not in_daily_window(bucket, leaves)
    assert leaves - bucket == DAY_SECONDS


@pytest.mark.parametrize(
    ("moment", "month", "next_start", "previous"),
    [
        ("2025-01-31T23:59:59", "2025-01", "2025-02-01T00:00:00", "2024-12"),
        ("2025-02-01T00:00:00", "2025-02", "2025-03-01T00:00:00", "2025-01"),
        ("2024-02-29T12:00:00", "2024-02", "2024-03-01T00:00:00", "2024-01"),
        ("2025-12-31T23:59:59", "2025-12", "2026-01-01T00:00:00", "2025-11"),
    ],
)
def test_months_are_utc_calendar_months(moment, month, next_start, previous):
    assert month_key(epoch(moment)) == month
    assert next_month_start(epoch(moment)) == epoch(next_start)
    assert previous_month_key(epoch(moment)) == previous


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_every_instant_is_in_exactly_its_own_bucket(moment):
    start = bucket_start(moment)
    assert start <= moment < start + BUCKET_SECONDS
    assert start % BUCKET_SECONDS == 0
    assert next_month_start(moment) > moment


def test_iso_utc_is_second_precision_with_z():
    assert iso_utc(epoch("2025-02-01T00:00:00")) == "2025-02-01T00:00:00Z"


# -- admission ----------------------------------------------------------------------------------

NOW = epoch("2025-03-15T12:34:56")
FREE = tier_config().tiers["free"]  # daily 2000 in / 4000 out, monthly 20000 / 40000, 512/turn


def usage_item(**attributes) -> UsageSnapshot:
    return UsageSnapshot.from_item({"pk": "user#u", "version": 3, **attributes})


def test_a_fresh_user_reserves_the_estimate_and_the_full_turn_maximum():
    plan = plan_turn(UsageSnapshot(), FREE, NOW, 100, "r1")
    assert not isinstance(plan, Refusal)
    assert plan.max_output_tokens == 512
    assert plan.reservation == Reservation("r1", 100, 512, NOW + 900, bucket_start(NOW), "2025-03")


def test_max_tokens_shrinks_to_the_output_headroom_of_the_tightest_window():
    # GIVEN 3900 of 4000 daily output tokens used in the last 24 h
    snapshot = usage_item(**{bucket_attribute(bucket_start(NOW) - 3600, "o"): 3900})
    plan = plan_turn(snapshot, FREE, NOW, 10, "r1")
    # THEN the turn may produce only the 100 that are left
    assert not isinstance(plan, Refusal)
    assert plan.max_output_tokens == 100
    assert plan.reservation.output_tokens == 100


def test_live_reservations_count_and_expired_ones_do_not():
    live = {"i": 1500, "o": 10, "exp": NOW + 60, "b": bucket_start(NOW), "m": "2025-03"}
    expired = {"i": 1500, "o": 10, "exp": NOW - 1, "b": bucket_start(NOW), "m": "2025-03"}
    # WHEN a live reservation holds 1500 of the 2000 daily input tokens
    refused = plan_turn(usage_item(**{"r#a": live}), FREE, NOW, 600, "r1")
    # THEN a 600-token turn does not fit; with the same reservation expired, it does
    assert isinstance(refused, Refusal) and refused.window == "dailyInputTokens"
    admitted = plan_turn(usage_item(**{"r#a": expired}), FREE, NOW, 600, "r1")
    assert not isinstance(admitted, Refusal)
    assert reservation_attribute("a") in admitted.prune


def test_an_exhausted_daily_input_window_resets_when_enough_old_buckets_roll_off():
    oldest = bucket_start(NOW) - 100 * BUCKET_SECONDS
    newer = bucket_start(NOW) - 10 * BUCKET_SECONDS
    snapshot = usage_item(
        **{bucket_attribute(oldest, "i"): 1000, bucket_attribute(newer, "i"): 950}
    )
    # WHEN a turn needs 100 input tokens with 1950 of 2000 used
    refusal = plan_turn(snapshot, FREE, NOW, 100, "r1")
    # THEN it is refused until the oldest contributing bucket leaves the window
    assert isinstance(refusal, Refusal)
    assert refusal.window == "dailyInputTokens"
    assert refusal.resets_at == oldest + DAY_SECONDS
    assert (refusal.used, refusal.allowed) == (1950, 2000)


def test_a_refusal_needing_two_buckets_to_roll_off_waits_for_the_second():
    first = bucket_start(NOW) - 140 * BUCKET_SECONDS
    second = bucket_start(NOW) - 50 * BUCKET_SECONDS
    # GIVEN 30 + 1940 input tokens used: the oldest bucket alone frees too little for 100 more
    snapshot = usage_item(**{bucket_attribute(first, "i"): 30, bucket_attribute(second, "i"): 1940})
    refusal = plan_turn(snapshot, FREE, NOW, 100, "r1")
    assert isinstance(refusal, Refusal)
    assert refusal.resets_at == second + DAY_SECONDS


def test_an_exhausted_month_resets_at_the_first_instant_of_the_next_utc_month():
    snapshot = usage_item(**{month_attribute("2025-03", "o"): 40000})
    refusal = plan_turn(snapshot, FREE, NOW, 10, "r1")
    assert isinstance(refusal, Refusal)
    assert refusal.window == "monthlyOutputTokens"
    assert refusal.resets_at == epoch("2025-04-01T00:00:00")


def test_last_months_usage_does_not_count_this_month():
    snapshot = usage_item(**{month_attribute("2025-02", "i"): 20000})
    assert not isinstance(plan_turn(snapshot, FREE, NOW, 10, "r1"), Refusal)


def test_when_several_windows_refuse_the_latest_reset_is_reported():
    snapshot = usage_item(
        **{
            bucket_attribute(bucket_start(NOW), "o"): 4000,
            month_attribute("2025-03", "o"): 40000,
        }
    )
    refusal = plan_turn(snapshot, FREE, NOW, 10, "r1")
    assert isinstance(refusal, Refusal) and refusal.window == "monthlyOutputTokens"


def test_stale_buckets_old_months_and_expired_reservations_are_pruned():
    rolled_off = daily_window_start(NOW) - BUCKET_SECONDS
    kept = daily_window_start(NOW)
    snapshot = usage_item(
        **{
            bucket_attribute(rolled_off, "i"): 5,
            bucket_attribute(rolled_off, "o"): 5,
            bucket_attribute(kept, "i"): 5,
            month_attribute("2025-01", "i"): 1,
            month_attribute("2025-02", "i"): 1,
        }
    )
    plan = plan_turn(snapshot, FREE, NOW, 10, "r1")
    assert not isinstance(plan, Refusal)
    assert set(plan.prune) == {
        bucket_attribute(rolled_off, "i"),
        bucket_attribute(rolled_off, "o"),
        bucket_attribute(rolled_off, "u"),
        month_attribute("2025-01", "i"),
        month_attribute("2025-01", "o"),
        month_attribute("2025-01", "u"),
    }


def test_settling_moves_usage_into_the_turns_bucket_and_month_and_drops_the_reservation():
    plan = plan_turn(UsageSnapshot(), FREE, NOW, 100, "r1")
    assert not isinstance(plan, Refusal)
    after = UsageSnapshot().with_settlement(plan.reservation, TokenUsage(80, 200), NOW + 30)
    assert after.settled(NOW + 30) == {
        "dailyInputTokens": 80,
        "dailyOutputTokens": 200,
        "monthlyInputTokens": 80,
        "monthlyOutputTokens": 200,
        "dailyUsd": 0,
        "monthlyUsd": 0,
    }
    assert after.reservations == {}


def test_the_input_estimate_is_generous():
    # ~4 characters per token is typical; the estimate assumes 3 plus framing per message
    assert estimate_input_tokens(["a" * 300]) == 104
    assert estimate_input_tokens(["hi", "there"]) == 1 + 4 + 2 + 4
