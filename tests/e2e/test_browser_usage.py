"""The usage panel and the allowance in a browser: what is left, a limit that clears, a reload that
keeps the figures and the model, answers cut at the tier's maximum, history trimmed to what is
left, and a turn too large for what is left.

Several of these need the gateway's `usage` answer and its `turn_too_large` refusal (docs/wire.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import TINY_STACK, forget_everything
from tests.e2e.ui import (
    last_answer,
    published_events,
    screenshot,
    send,
    sign_in_as,
    usage_of,
    wait_answered,
)
from tests.local.gateway_harness import Gateway, start_gateway

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MONEY_STACK = Path(__file__).with_name("money-stack.yaml")
TIER_WORDS = {"tier", "tiers", "tierConfig", "models", "defaultModel", "defaultTier", "limits"}


def figures(text: str) -> tuple[int, int]:
    """(left, allowed) from "1,960 left of 2,000 tokens"."""
    match = re.fullmatch(r"([\d,]+) left of ([\d,]+) tokens", text)
    assert match, text
    left, allowed = (int(n.replace(",", "")) for n in match.groups())
    return left, allowed


def used_of(page: Page, window: str) -> str:
    return page.locator(f'#usage-list dd[data-window="{window}"] .usage-used').inner_text()


def expect_figures_before_any_answer(page: Page) -> None:
    """The gateway's usage answer has filled the panel: no answer was needed for it."""
    expect(page.locator("#usage-updated")).to_contain_text("Updated", timeout=10_000)
    expect(page.locator("#usage-updated")).not_to_contain_text("first answer")


@contextmanager
def page_on(browser, gateway: Gateway) -> Iterator[Page]:
    """A page of `gateway`'s chat, closed with what it kept in the browser forgotten."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    origin = f"http://127.0.0.1:{gateway.port}"
    page.goto(f"{origin}/")
    try:
        yield page
    finally:
        page.close()
        forget_everything(browser, origin)
    assert errors == [], f"uncaught errors in the page: {errors}"


def test_config_json_carries_no_tier_data(page: Page, tiny_gateway):
    # The page learns tier, models and limits from the gateway: a tier change leaves it alone.
    config = page.evaluate("fetch('config.json').then((r) => r.json())")
    assert config["userPoolId"] and config["eventsHttpEndpoint"]
    assert not TIER_WORDS & set(config)
    assert "amazon.nova" not in json.dumps(config)


def test_the_panel_shows_what_is_left_of_each_window(page: Page):
    sign_in_as(page, "roomy-user")
    send(page, "How much is left [tokens=25]")
    answer = wait_answered(page)
    expect(answer.locator(".meta")).to_contain_text("25 out tokens")

    # What is left is the allowance less what was used, shown for every window.
    for window, allowed in (
        ("dailyInputTokens", 200_000),
        ("dailyOutputTokens", 400_000),
        ("monthlyInputTokens", 2_000_000),
        ("monthlyOutputTokens", 4_000_000),
    ):
        left, shown_allowed = figures(usage_of(page, window))
        used = int(used_of(page, window).removesuffix(" used").replace(",", ""))
        assert shown_allowed == allowed, window
        assert left == allowed - used and used > 0, window
    assert usage_of(page, "dailyOutputTokens") == "399,975 left of 400,000 tokens"
    meter = page.locator('#usage-list dd[data-window="dailyOutputTokens"] [role="meter"]')
    expect(meter).to_have_attribute("aria-valuetext", "399,975 left of 400,000 tokens")
    expect(page.locator("#usage-list")).not_to_contain_text("Limit reached")
    screenshot(page, "usage-left")


def test_a_reload_keeps_the_panel_the_tier_and_the_picked_model(page: Page):
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda f: frames.append(f)))
    sign_in_as(page, "tiny-user")

    # Before any answer, the gateway's usage answer names the tier, its models and the figures.
    expect_figures_before_any_answer(page)
    expect(page.locator("#account-tier")).to_have_text("tiny tier")
    expect(page.locator("#model option")).to_have_text(
        ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"]
    )
    expect(page.locator("#model")).to_have_value("amazon.nova-micro-v1:0")
    assert usage_of(page, "dailyOutputTokens") == "80 left of 80 tokens"
    asked = [e for e in published_events(frames) if e.get("action") == "usage"]
    assert len(asked) == 1 and re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", asked[0]["turnId"])

    page.locator("#model").select_option("amazon.nova-lite-v1:0")
    send(page, "Remember me [tokens=5]")
    expect(wait_answered(page).locator(".meta")).to_contain_text("amazon.nova-lite-v1:0")
    before = {w: usage_of(page, w) for w in ("dailyInputTokens", "dailyOutputTokens")}
    assert before["dailyOutputTokens"] == "75 left of 80 tokens"

    page.reload()
    expect(page.locator("#connection")).to_have_text("Connected", timeout=15_000)
    expect_figures_before_any_answer(page)
    for window, text in before.items():
        expect(page.locator(f'#usage-list dd[data-window="{window}"] .usage-figures')).to_have_text(
            text
        )
    expect(page.locator("#account-tier")).to_have_text("tiny tier")
    expect(page.locator("#model")).to_have_value("amazon.nova-lite-v1:0")
    screenshot(page, "usage-after-reload")

    # The remembered pick is used, not the tier's default.
    send(page, "Still the one I picked [tokens=3]")
    expect(wait_answered(page).locator(".meta")).to_contain_text("amazon.nova-lite-v1:0")


def test_an_answer_cut_at_the_tiers_maximum_is_marked(page: Page):
    sign_in_as(page, "brief-user")
    send(page, "A short question")  # the local model would write 512 tokens; the tier allows 12
    answer = wait_answered(page)
    expect(answer.locator(".meta")).to_contain_text("12 out tokens")
    expect(answer.locator(".note")).to_have_text("Cut at your tier's maximum answer length.")
    expect(page.locator("#announcer")).to_contain_text("Cut at your tier's maximum answer length.")

    # An answer that ended by itself carries no such note.
    send(page, "A tiny one [tokens=4]")
    expect(wait_answered(page).locator(".note")).to_have_count(0)
    screenshot(page, "answer-cut")


def test_a_turn_too_large_for_what_is_left_offers_a_new_chat_that_works(page: Page):
    sign_in_as(page, "brief-user")
    expect_figures_before_any_answer(page)
    # One message whose byte bound (3,500 bytes and the template) outgrows the 3,000 a day.
    send(page, "Please read all of this. " + "A long paragraph of plain words. " * 105)
    problem = wait_answered(page).locator(".problem")
    expect(problem).to_have_attribute("data-code", "turn_too_large")
    expect(problem).to_contain_text(re.compile(r"shorter message", re.IGNORECASE))
    expect(problem).not_to_contain_text("available again")
    expect(problem).not_to_contain_text("chat again from")
    expect(page.locator('#usage-list dd[data-window="dailyInputTokens"]')).not_to_contain_text(
        "Limit reached"
    )
    screenshot(page, "turn-too-large")

    # The refusal's own New chat starts an empty conversation, where a short message is answered.
    problem.get_by_role("button", name="New chat").click()
    expect(page.locator(".message")).to_have_count(0)
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    send(page, "Something short [tokens=5]")
    expect(wait_answered(page).locator(".meta")).to_contain_text("5 out tokens")


def test_a_long_conversation_is_trimmed_and_answered_near_the_allowance(page: Page):
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda f: frames.append(f)))
    sign_in_as(page, "chatty-user")
    expect_figures_before_any_answer(page)
    paragraph = "We talk about metering, windows and the history a chat sends. " * 3

    refused = None
    for turn in range(1, 60):
        send(page, f"Turn {turn}. {paragraph}[tokens=20]")
        answer = wait_answered(page)
        if answer.locator(".problem").count():
            refused = answer.locator(".problem").get_attribute("data-code")
            break
    left, allowed = figures(usage_of(page, "dailyInputTokens"))
    screenshot(page, "trimmed-conversation")

    # Answered until the daily input allowance was nearly used up, never refused for history.
    assert allowed == 4000
    assert allowed - left >= 0.9 * allowed, f"refused ({refused}) with {left} of {allowed} left"
    turns = [e for e in published_events(frames) if "messages" in e]
    answered = page.locator(".message.assistant .meta").count()
    assert answered >= 8, answered
    # Some turn carried less than the whole conversation before it: the oldest turns were left
    # out (every turn before the refusal was answered, so turn i had 2 i earlier messages)...
    assert any(len(t["messages"]) < 2 * i + 1 for i, t in enumerate(turns)), [
        len(t["messages"]) for t in turns
    ]
    # ...and every turn still ended with its new message, after whole user/answer pairs.
    for sent in turns:
        roles = [m["role"] for m in sent["messages"]]
        assert roles == ["user", "assistant"] * (len(roles) // 2) + ["user"], roles


# --- a limit that clears, on a gateway slow enough to hold turns in flight ----------------------


@pytest.fixture(scope="module")
def slow_gateway(tmp_path_factory) -> Iterator[Gateway]:
    running = start_gateway(
        tmp_path_factory.mktemp("slow-gateway"),
        "--stack",
        "e2e",
        "--config-file",
        str(TINY_STACK),
        "--tokens-per-second",
        "5",
    )
    try:
        yield running
    finally:
        running.stop()


def test_limit_reached_clears_when_a_later_answer_shows_room(browser, slow_gateway):
    with page_on(browser, slow_gateway) as page:
        sign_in_as(page, "tiny-user")
        # Two other tabs of the same user hold the whole daily output allowance (2 × 40 of 80)
        # with answers still streaming.
        holders = []
        for name in ("first", "second"):
            tab = browser.new_page()
            tab.goto(page.url)
            expect(tab.locator("#connection")).to_have_text("Connected", timeout=15_000)
            tab.get_by_role("button", name="New chat", exact=True).click()
            send(tab, f"Hold the {name} half [tokens=15]")
            expect(last_answer(tab).locator(".text")).to_contain_text("Local model", timeout=10_000)
            holders.append(tab)

        send(page, "Is there room [tokens=5]")
        problem = wait_answered(page).locator(".problem")
        expect(problem).to_have_attribute("data-code", "limit_exceeded")
        row = page.locator('#usage-list dd[data-window="dailyOutputTokens"]')
        expect(row).to_contain_text("Limit reached · available again from")

        # The held answers end having used 15 each: the window has room again.
        for tab in holders:
            expect(wait_answered(tab, timeout=30_000).locator(".meta")).to_contain_text(
                "15 out tokens"
            )
            tab.close()
        send(page, "Now there is [tokens=5]")
        expect(wait_answered(page, timeout=30_000).locator(".meta")).to_contain_text("5 out tokens")
        expect(row).not_to_contain_text("Limit reached")
        expect(row.locator(".meter")).not_to_have_class(re.compile(r"\bfull\b"))
        assert usage_of(page, "dailyOutputTokens") == "45 left of 80 tokens"
        expect(page.locator("#announcer")).to_contain_text("room again")
        screenshot(page, "limit-cleared")


# --- money windows ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def money_gateway(tmp_path_factory) -> Iterator[Gateway]:
    running = start_gateway(
        tmp_path_factory.mktemp("money-gateway"),
        "--stack",
        "e2e",
        "--config-file",
        str(MONEY_STACK),
        "--tokens-per-second",
        "100",
    )
    try:
        yield running
    finally:
        running.stop()


def test_the_panel_shows_the_dollars_left_where_the_tier_sets_a_budget(browser, money_gateway):
    with page_on(browser, money_gateway) as page:
        sign_in_as(page, "budget-user")
        expect_figures_before_any_answer(page)
        daily = page.locator('#usage-list dd[data-window="dailyUsd"] .usage-figures')
        expect(daily).to_have_text("$0.50 left of $0.50")
        monthly = page.locator('#usage-list dd[data-window="monthlyUsd"] .usage-figures')
        expect(monthly).to_have_text("$5.00 left of $5.00")

        send(page, "What does this cost [tokens=300]")
        answer = wait_answered(page)
        # The turn's cost is on the answer, and the panel counts it against the budget.
        meta = answer.locator(".meta").inner_text()
        cost = re.search(r"\$[\d.]+", meta)
        assert cost, meta
        assert float(cost.group(0)[1:]) > 0, meta
        assert used_of(page, "dailyUsd") == f"{cost.group(0)} used"
        left = re.fullmatch(r"\$(\d+\.\d+) left of \$0\.50", daily.inner_text())
        assert left, daily.inner_text()
        assert float(left.group(1)) <= 0.5
        screenshot(page, "usage-dollars")
