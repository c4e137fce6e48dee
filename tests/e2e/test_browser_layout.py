"""Conversations kept across reloads, the 375 px layout, keyboard-only use and accessibility."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_browser_answers import MARKDOWN_ANSWER, MARKDOWN_PROMPT, prepare
from tests.e2e.test_web_build import WEB, needs_node_modules
from tests.e2e.ui import (
    last_answer,
    published_events,
    screenshot,
    send,
    sign_in_as,
    wait_answered,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"

# Text nodes in the page's chrome that wrap onto a second line (so may break mid-word).
WRAPPED_CHROME = """
() => {
  const wrapped = [];
  for (const root of document.querySelectorAll('.topbar, .toolbar, .composer, .usage dt')) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim() || !node.parentElement.offsetParent) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
      if (lines.size > 1) wrapped.push(node.textContent.trim());
    }
  }
  return wrapped;
}
"""


# Whether the selected option's text fits inside the <select>, beside its arrow.
SELECT_TEXT_FITS = """
() => {
  const select = document.getElementById('model');
  const style = getComputedStyle(select);
  const context = document.createElement('canvas').getContext('2d');
  context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const text = context.measureText(select.selectedOptions[0].textContent).width;
  const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
  return text + padding + 20 <= select.clientWidth;
}
"""


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_conversations_survive_a_reload_are_listed_and_reopen(page: Page):
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda f: frames.append(f)))
    sign_in_as(page, "roomy-user")
    send(page, "First question [tokens=5]")
    wait_answered(page)
    send(page, "Second question [tokens=5]")
    wait_answered(page)

    page.reload()
    expect(page.locator("#connection")).to_have_text("Connected", timeout=15_000)
    expect(page.locator(".message .text")).to_have_count(4)
    expect(page.locator(".message.user .text")).to_have_text(
        ["First question [tokens=5]", "Second question [tokens=5]"]
    )
    expect(last_answer(page).locator(".meta")).to_contain_text("5 out tokens")
    chats = page.locator("#chat-list button")
    expect(chats).to_have_count(1)
    expect(chats.first).to_contain_text("First question [tokens=5]")

    # "New chat" starts another; the earlier one stays listed and reopens.
    page.get_by_role("button", name="New chat").click()
    expect(page.locator(".message")).to_have_count(0)
    send(page, "Another topic [tokens=5]")
    wait_answered(page)
    expect(chats).to_have_count(2)
    expect(chats.first).to_contain_text("Another topic")
    expect(chats.first).to_have_attribute("aria-current", "true")
    chats.filter(has_text="First question").click()
    expect(page.locator(".message.user .text")).to_have_text(
        ["First question [tokens=5]", "Second question [tokens=5]"]
    )

    # Carrying on in a reopened conversation sends its history with the new message.
    frames.clear()
    send(page, "Third question [tokens=5]")
    wait_answered(page)
    turn = next(e for e in published_events(frames) if "messages" in e)
    assert [m["role"] for m in turn["messages"]] == ["user", "assistant"] * 2 + ["user"]
    assert turn["messages"][0]["content"] == [{"text": "First question [tokens=5]"}]
    screenshot(page, "conversations")

    # Kept per user: another user on this browser sees none of them.
    sign_out(page)
    sign_in_as(page, "tiny-user")
    expect(page.locator("#chat-list button")).to_have_text([re.compile(r"^New chat")])
    expect(page.locator(".message")).to_have_count(0)
    sign_out(page)
    sign_in_as(page, "roomy-user")
    expect(page.locator("#chat-list button")).to_have_count(2)


def test_an_answer_cut_off_by_a_reload_is_kept_and_marked_interrupted(page: Page):
    sign_in_as(page, "roomy-user")
    send(page, "A long answer please [tokens=1500]")
    expect(last_answer(page).locator(".text")).to_contain_text("Local model reply", timeout=15_000)

    page.reload()
    expect(page.locator("#connection")).to_have_text("Connected", timeout=15_000)
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-status", "interrupted")
    expect(answer).not_to_have_class(re.compile(r"\bstreaming\b"))
    expect(answer.locator(".text")).to_contain_text("Local model reply")
    expect(answer.locator(".note")).to_contain_text("Interrupted")
    expect(page.get_by_role("button", name="Send")).to_be_visible()


def test_at_375_px_nothing_wraps_mid_word_and_usage_opens_from_the_top(page: Page):
    page.set_viewport_size({"width": 375, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    sign_in_as(page, "roomy-user")
    send(page, "A narrow screen [tokens=30]")
    wait_answered(page)

    assert page.evaluate(WRAPPED_CHROME) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # The model selector shows its model's whole name (it once showed a lone "(").
    expect(page.locator("#model")).to_have_value("amazon.nova-lite-v1:0")
    assert page.evaluate(SELECT_TEXT_FITS), "the model's name is cut off in the selector"
    topbar = page.locator(".topbar").bounding_box()
    assert topbar["height"] < 60, topbar
    expect(page.locator("#usage")).to_be_hidden()
    screenshot(page, "mobile-375")

    usage = page.get_by_role("button", name="Usage")
    expect(usage).to_be_in_viewport()
    usage.click()
    expect(usage).to_have_attribute("aria-expanded", "true")
    panel = page.locator("#usage")
    expect(panel).to_be_in_viewport()
    expect(panel.locator('dd[data-window="dailyOutputTokens"]')).to_contain_text(
        re.compile(r"^[\d,]+ left of 400,000 tokens")
    )
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    assert page.evaluate(WRAPPED_CHROME) == []
    screenshot(page, "mobile-375-usage")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(usage).to_be_focused()

    page.get_by_role("button", name="Chats").click()
    expect(page.locator("#chats")).to_be_in_viewport()
    expect(page.locator("#chat-list button")).to_have_count(1)


def press_tab_until(page: Page, condition: str, limit: int = 25, shift: bool = False) -> None:
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if shift else "Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {condition}; }})()"):
            return
    raise AssertionError(f"Tab never reached an element where {condition}")


def test_keyboard_only_use_signs_in_chats_stops_and_switches_chats(page: Page):
    page.evaluate(
        """() => {
             window.__announced = [];
             new MutationObserver(() => window.__announced.push(
               document.getElementById('announcer').textContent)).observe(
               document.getElementById('announcer'), {childList: true, characterData: true,
                                                       subtree: true});
           }"""
    )
    press_tab_until(page, "el.textContent.includes('roomy-user')")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#connection")).to_have_text("Connected", timeout=15_000)
    prompt = page.get_by_role("textbox", name="Message")
    expect(prompt).to_be_focused()

    # Enter sends; the answer is announced politely once it is complete, not delta by delta.
    page.keyboard.type("Typed without a mouse [tokens=60]")
    page.keyboard.press("Enter")
    wait_answered(page)
    expect(page.locator("#announcer")).to_have_text(re.compile(r"^Answer complete, \d+ words\.$"))
    expect(page.locator("#announcer")).to_have_attribute("aria-live", "polite")
    assert page.locator("#messages").get_attribute("aria-live") is None
    announced = [a for a in page.evaluate("window.__announced") if a]
    assert len(announced) <= 3, announced

    # Escape stops a running answer.
    page.keyboard.type("A long one [tokens=1500]")
    page.keyboard.press("Enter")
    expect(last_answer(page).locator(".text")).to_contain_text("Local model", timeout=15_000)
    page.keyboard.press("Escape")
    expect(last_answer(page)).to_have_attribute("data-status", "stopped")

    # New chat and back again, from the keyboard.
    press_tab_until(page, "el.id === 'new-chat'", shift=True)
    page.keyboard.press("Enter")
    expect(page.locator(".message")).to_have_count(0)
    expect(prompt).to_be_focused()
    press_tab_until(page, "el.dataset.chat && !el.hasAttribute('aria-current')", shift=True)
    page.keyboard.press("Enter")
    expect(page.locator(".message.user")).to_have_count(2)
    expect(prompt).to_be_focused()
    screenshot(page, "keyboard")


@needs_node_modules
def test_axe_finds_no_serious_or_critical_violations(page: Page, tiny_gateway):
    def violations() -> list[str]:
        page.add_script_tag(path=str(AXE))
        found = page.evaluate("axe.run(document).then((r) => r.violations)")
        return [
            f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
            for v in found
            if v["impact"] in ("serious", "critical")
        ]

    assert violations() == [], "on the sign-in page"
    prepare(tiny_gateway, MARKDOWN_PROMPT, MARKDOWN_ANSWER)
    sign_in_as(page, "roomy-user")
    send(page, MARKDOWN_PROMPT)  # links, inline code and a code block with its Copy button
    wait_answered(page)
    send(page, "And more [tokens=20]")
    wait_answered(page)
    assert violations() == [], "on the chat page"
    page.set_viewport_size({"width": 375, "height": 740})
    page.get_by_role("button", name="Usage").click()
    assert violations() == [], "on a narrow screen with the usage panel open"
    screenshot(page, "axe-mobile")
