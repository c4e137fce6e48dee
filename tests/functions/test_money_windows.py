"""Money windows: a tier's ``dailyUsd`` / ``monthlyUsd`` reserved at the dearest price a turn may
be billed at, settled at what the model reported, never passed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from gateway.metering import Refusal, charged_usage, limits_view, plan_turn
from gateway.tiers import NANO_PER_USD, ModelPrice, TierConfigError, parse_tier_config
from gateway.usage import TokenUsage, UsageSnapshot

NOW = int(datetime(2025, 3, 14, 12, 0, tzinfo=UTC).timestamp())
#: Claude Haiku 4.5's list price per 1,000 tokens (model-catalog.json).
HAIKU = ModelPrice(0.0011, 0.0055)


def tier(**money: float) -> Any:
    config = parse_tier_config(
        {
            "budget": {
                "models": ["amazon.nova-micro-v1:0"],
                "dailyInputTokens": 1_000_000,
                "dailyOutputTokens": 1_000_000,
                "monthlyInputTokens": 10_000_000,
                "monthlyOutputTokens": 10_000_000,
                "maxOutputTokensPerTurn": 1000,
                **money,
            }
        },
        "budget",
    )
    return config.tiers["budget"]


def test_prices_are_metered_in_whole_nano_dollars_rounded_up():
    assert HAIKU.cost_nano(1000, 0) == 1_100_000  # $0.0011
    assert HAIKU.cost_nano(0, 1000) == 5_500_000  # $0.0055
    assert HAIKU.cost_nano(1, 1) == 1_100 + 5_500
    assert ModelPrice(0.000035, 0.00014).cost_nano(3, 0) == 105  # never rounded down


def test_a_turn_reserves_its_worst_case_cost_and_the_output_the_money_left_can_pay_for():
    budget = tier(dailyUsd=0.01)  # 10,000,000 nano-dollars
    plan = plan_turn(UsageSnapshot(), budget, NOW, 2000, "r1", price=HAIKU)
    assert not isinstance(plan, Refusal) and plan.reservation is not None
    # input 2000 tokens cost $0.0022; the $0.0078 left pays for 1418 output tokens
    assert plan.max_output_tokens == 1000  # the tier's maximum is smaller
    assert plan.reservation.cost == HAIKU.cost_nano(2000, 1000)
    tight = tier(dailyUsd=0.004)
    plan = plan_turn(UsageSnapshot(), tight, NOW, 2000, "r1", price=HAIKU)
    assert not isinstance(plan, Refusal) and plan.reservation is not None
    assert plan.max_output_tokens == (4_000_000 - 2_200_000) // 5_500  # 327
    assert plan.reservation.cost <= 4_000_000


def test_a_turn_the_money_left_cannot_pay_for_is_too_large_while_a_small_one_fits():
    budget = tier(dailyUsd=0.001)  # $0.001 pays for about 900 input tokens
    refusal = plan_turn(UsageSnapshot(), budget, NOW, 5000, "r1", price=HAIKU)
    assert isinstance(refusal, Refusal) and refusal.window == "dailyUsd"
    assert not refusal.used_up and refusal.needed > refusal.remaining


def test_a_used_up_money_window_says_when_it_resets():
    budget = tier(monthlyUsd=0.001)
    spent = UsageSnapshot(exists=True, month_costs={"2025-03": 999_000})
    refusal = plan_turn(spent, budget, NOW, 100, "r1", price=HAIKU)
    assert isinstance(refusal, Refusal) and refusal.window == "monthlyUsd" and refusal.used_up
    assert refusal.resets_at == int(datetime(2025, 4, 1, tzinfo=UTC).timestamp())


def test_settlement_charges_the_reported_usage_at_its_price_never_above_the_reservation():
    budget = tier(dailyUsd=0.01)
    plan = plan_turn(UsageSnapshot(), budget, NOW, 2000, "r1", price=HAIKU)
    assert not isinstance(plan, Refusal) and plan.reservation is not None
    charge = charged_usage(plan.reservation, TokenUsage(400, 300), HAIKU)
    assert charge.usage.cost_nano == HAIKU.cost_nano(400, 300)
    over = charged_usage(plan.reservation, TokenUsage(10**6, 10**6), HAIKU)
    assert over.usage.cost_nano == plan.reservation.cost


def test_the_limits_show_money_windows_in_dollars_only_where_the_tier_sets_them():
    used = {"dailyInputTokens": 5, "dailyUsd": 1_234_567, "monthlyUsd": 2 * NANO_PER_USD}
    assert "dailyUsd" not in limits_view(tier(), used)
    view = limits_view(tier(dailyUsd=1.5, monthlyUsd=20), used)
    assert view["dailyUsd"] == {"used": 0.001235, "allowed": 1.5}
    assert view["monthlyUsd"] == {"used": 2.0, "allowed": 20.0}


@pytest.mark.parametrize("bad", [0, -1, "5", True])
def test_a_money_allowance_must_be_a_positive_amount(bad):
    with pytest.raises(TierConfigError, match=r"tiers.budget.dailyUsd"):
        tier(dailyUsd=bad)


def test_a_tier_with_a_money_window_needs_a_price_for_every_model():
    config = parse_tier_config(
        {
            "budget": {
                "models": ["amazon.nova-micro-v1:0"],
                "dailyInputTokens": 10,
                "dailyOutputTokens": 10,
                "monthlyInputTokens": 10,
                "monthlyOutputTokens": 10,
                "maxOutputTokensPerTurn": 10,
                "dailyUsd": 1,
            }
        },
        "budget",
    )
    with pytest.raises(TierConfigError, match="amazon.nova-micro-v1:0"):
        config.with_prices({})
