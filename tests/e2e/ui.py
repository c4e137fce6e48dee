"""What the browser tests do on the chat page, in the words of its roles and labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Page, expect

#: Every browser test saves what it saw here (git-ignored), to be looked at.
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"

#: Keeps every WebSocket the page opens reachable from the test, before the page's own code runs.
RECORD_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
})();
"""


def screenshot(page: Page, name: str) -> bytes:
    SCREENSHOTS.mkdir(exist_ok=True)
    shot = page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    assert shot.startswith(b"\x89PNG")
    return shot


def sign_in_as(page: Page, username: str) -> None:
    page.get_by_role("button", name=re.compile(rf"^{username}")).click()
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#connection")).to_have_text("Connected", timeout=15_000)


def send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("button", name="Send").click()


def last_answer(page: Page):
    return page.locator(".message.assistant").last


def wait_answered(page: Page, timeout: float = 20_000):
    """The last answer, once it has its final line (usage, or a problem)."""
    answer = last_answer(page)
    expect(answer.locator(".meta, .problem")).to_have_count(1, timeout=timeout)
    return answer


def usage_of(page: Page, window: str) -> str:
    return page.locator(f'#usage-list dd[data-window="{window}"] .usage-figures').inner_text()


def published_events(frames: list[str]) -> list[dict]:
    """The events the page published over its WebSocket, parsed."""
    events = []
    for frame in frames:
        message = json.loads(frame)
        if message.get("type") == "publish":
            events.extend(json.loads(e) for e in message["events"])
    return events
