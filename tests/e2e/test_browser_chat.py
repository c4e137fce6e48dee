"""The web chat in a real browser against a real local gateway: sign in, stream, meter, refuse."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import screenshot, send, sign_in_as, usage_of

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The README's screenshot; refreshed only when asked (``UPDATE_SCREENSHOT=1 make test``) so a
#: test run leaves the working tree as it found it.
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"
MAX_TURNS = 6

# Records every text the streaming answer shows, to prove it arrived in pieces.
RECORD_STREAM = """
() => {
  window.__shown = [];
  new MutationObserver(() => {
    const bubble = document.querySelector('.message.assistant.streaming .text');
    if (bubble && bubble.textContent) window.__shown.push(bubble.textContent.length);
  }).observe(document.getElementById('messages'), {subtree: true, childList: true,
                                                   characterData: true});
}
"""


def test_a_user_signs_in_chats_watches_usage_grow_and_meets_the_limit(page: Page, tiny_gateway):
    # GIVEN the tiny tier's demo user, signed in through the page
    sign_in_as(page, "tiny-user")
    expect(page.locator("#account-tier")).to_have_text("tiny tier")

    # THEN the model selector offers exactly the tier's allowlist (from the gateway's usage
    # answer), labelled as local, and the panel shows the whole allowance left
    options = page.locator("#model option")
    expect(options).to_have_text(["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"])
    expect(page.locator("#model-note")).to_have_text("Local model")
    expect(page.locator('#usage-list dd[data-window="dailyOutputTokens"]')).to_contain_text(
        "80 left of 80 tokens"
    )

    # WHEN a message is sent, the answer streams in over several updates
    page.evaluate(RECORD_STREAM)
    send(page, "Hello gateway")
    answer = page.locator(".message.assistant").first
    expect(answer.locator(".meta")).to_contain_text("(local model)", timeout=20_000)
    expect(answer.locator(".text")).to_have_text(
        re.compile(r"^Local model reply to Hello gateway:")
    )
    shown = page.evaluate("window.__shown")
    assert len(set(shown)) >= 3, f"the answer did not stream in pieces: {shown}"

    # AND the usage panel shows what is left of the tier's allowance after the turn
    expect(page.locator('#usage-list dd[data-window="dailyOutputTokens"]')).to_contain_text(
        "40 left of 80 tokens"
    )
    assert re.match(r"^[\d,]+ left of 2,000 tokens$", usage_of(page, "dailyInputTokens"))

    # WHEN the user keeps chatting, the tier's daily output allowance runs out
    for turn in range(2, MAX_TURNS + 1):
        send(page, f"Tell me more, part {turn}")
        finished = page.locator(".message.assistant").nth(turn - 1)
        expect(finished.locator(".meta, .problem")).to_have_count(1, timeout=20_000)
        if finished.locator(".problem").count():
            break
    problem = page.locator('.problem[data-code="limit_exceeded"]')
    expect(problem).to_have_count(1)

    # THEN the limit message names the window and when it frees up, and the panel shows it full
    expect(problem).to_contain_text("Limit reached")
    expect(problem).to_contain_text("all your daily output tokens on the tiny tier")
    expect(problem).to_contain_text("You can chat again from")
    exhausted = page.locator('#usage-list dd[data-window="dailyOutputTokens"]')
    expect(exhausted).to_contain_text("Limit reached · available again from")
    expect(exhausted.locator(".meter")).to_have_class(re.compile(r"\bfull\b"))
    expect(
        page.locator('#usage-list dd[data-window="monthlyOutputTokens"] .meter')
    ).not_to_have_class(re.compile(r"\bfull\b"))
    expect(page.get_by_role("button", name="Send")).to_be_enabled()

    shot = screenshot(page, "chat-limit-reached")
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        README_SCREENSHOT.write_bytes(shot)


def test_a_model_outside_the_allowlist_gets_a_clear_message(page: Page):
    sign_in_as(page, "roomy-user")
    # The selector never offers it, so add it the way a modified client would.
    page.evaluate(
        """() => document.getElementById('model')
                 .add(new Option('amazon.nova-pro-v1:0', 'amazon.nova-pro-v1:0', true, true))"""
    )
    send(page, "Use the big model")
    problem = page.locator('.problem[data-code="model_not_allowed"]')
    expect(problem).to_contain_text("not available on the roomy tier", timeout=20_000)


def test_new_chat_clears_the_conversation(page: Page):
    sign_in_as(page, "roomy-user")
    send(page, "First conversation [tokens=5]")
    expect(page.locator(".message.assistant .meta")).to_have_count(1, timeout=20_000)
    page.get_by_role("button", name="New chat").click()
    expect(page.locator(".message")).to_have_count(0)
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()
