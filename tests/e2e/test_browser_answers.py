"""Answers on screen: markdown with code blocks, hostile model output made harmless, and Stop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import (
    last_answer,
    published_events,
    screenshot,
    send,
    sign_in_as,
    wait_answered,
)
from tests.local.gateway_harness import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MARKDOWN_PROMPT = "Show me markdown"
MARKDOWN_ANSWER = """Here is **bold**, *emphasis* and `inline code`, with a [link](https://example.com/docs).

- first item
- second item

```python
def greet(name):
    return f"Hello, {name} <b>not bold</b>"
```
"""

HOSTILE_PROMPT = "Show me something hostile"
HOSTILE_ANSWER = """An image: <img src=x onerror="window.__pwned = 'img'">

A markdown link: [click me](javascript:window.__pwned='md-link')
and one in capitals: [again](JaVaScRiPt:window.__pwned='md-link-2')

A raw link: <a href="javascript:window.__pwned='raw-link'">raw</a>

<script>window.__pwned = 'script'</script>
<svg onload="window.__pwned = 'svg'"><circle r="5"/></svg>
<iframe src="javascript:window.__pwned='iframe'"></iframe>
<details open ontoggle="window.__pwned = 'details'"><summary>more</summary>x</details>
<form action="javascript:window.__pwned='form'"><button>go</button></form>

```html
<img src=x onerror="window.__pwned = 'fenced'">
<script>window.__pwned = 'fenced-script'</script>
```
"""


def prepare(gateway, prompt: str, answer: str) -> None:
    """Store an operator-prepared answer for `prompt`, with the operator's own CLI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    subprocess.run(
        [
            sys.executable,
            "tools/prepared_responses.py",
            "--table",
            "ai-gateway-e2e-prepared-responses",
            "--endpoint-url",
            gateway.outputs["awsEndpointUrl"],
            "--region",
            gateway.outputs["region"],
            "put",
            "--prompt",
            prompt,
            "--response",
            answer,
        ],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    # Warm functions refresh their index of prepared keys every tierConfigCacheSeconds (1 s here).
    time.sleep(1.2)


def test_an_answer_is_rendered_as_markdown_with_a_copyable_code_block(
    page: Page, browser, tiny_gateway
):
    prepare(tiny_gateway, MARKDOWN_PROMPT, MARKDOWN_ANSWER)
    browser.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=f"http://127.0.0.1:{tiny_gateway.port}"
    )
    sign_in_as(page, "roomy-user")

    send(page, MARKDOWN_PROMPT)
    answer = wait_answered(page)
    expect(answer.locator(".meta")).to_contain_text("prepared answer")

    text = answer.locator(".text")
    expect(text.locator("strong")).to_have_text("bold")
    expect(text.locator("em")).to_have_text("emphasis")
    expect(text.locator("ul > li")).to_have_text(["first item", "second item"])
    link = text.get_by_role("link", name="link")
    expect(link).to_have_attribute("href", "https://example.com/docs")
    expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
    code = text.locator(".code-block pre code")
    expect(code).to_contain_text('return f"Hello, {name} <b>not bold</b>"')
    expect(text.locator(".code-block b")).to_have_count(0)
    expect(text.locator(".code-bar")).to_contain_text("python")
    screenshot(page, "markdown")

    text.get_by_role("button", name="Copy python code").click()
    expect(text.get_by_role("button", name="Copy python code")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == code.inner_text()
    assert copied.startswith("def greet(name):")


def test_hostile_model_output_runs_no_script_and_leaves_no_live_javascript_link(
    page: Page, tiny_gateway
):
    prepare(tiny_gateway, HOSTILE_PROMPT, HOSTILE_ANSWER)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in_as(page, "roomy-user")

    send(page, HOSTILE_PROMPT)
    wait_answered(page)
    text = page.locator(".message.assistant").nth(0).locator(".text")
    # The local model echoes the prompt: HTML can come from a live model too.
    send(page, "Echo <img src=x onerror=window.__pwned=9> [tokens=5]")
    wait_answered(page)
    page.wait_for_timeout(500)  # let any injected handler fire

    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    answers = page.locator(".message.assistant .text")
    for tag in ("img", "script", "svg", "iframe", "form", "button:not(.copy)"):
        expect(answers.locator(tag)).to_have_count(0)
    live = page.evaluate(
        """() => [...document.querySelectorAll('#messages *')].flatMap((el) =>
             [...el.attributes].filter((a) => /^on/i.test(a.name)
               || /^\\s*javascript:/i.test(a.value)).map((a) => `${el.tagName} ${a.name}`))"""
    )
    assert live == []
    # The links are still there as text, but go nowhere.
    expect(text.get_by_text("click me")).to_be_visible()
    assert text.get_by_text("click me").get_attribute("href") is None
    # HTML inside a code fence is shown as code, not run.
    expect(text.locator(".code-block pre code")).to_contain_text(
        "<img src=x onerror=\"window.__pwned = 'fenced'\">"
    )
    echo = last_answer(page).locator(".text")
    expect(echo).to_have_text(re.compile(r"^Local model reply to Echo"))
    screenshot(page, "hostile-output")


def test_stop_ends_the_answer_at_once_and_asks_the_gateway_to_stop(page: Page):
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda f: frames.append(f)))
    sign_in_as(page, "roomy-user")

    send(page, "Tell me a long story [tokens=400]")
    answer = last_answer(page)
    expect(answer.locator(".text")).to_contain_text("Local model reply", timeout=15_000)
    expect(answer).to_have_class(re.compile(r"\bstreaming\b"))
    page.get_by_role("button", name="Stop").click()

    # On screen it ends at once: no cursor, marked as stopped, the composer ready again.
    expect(answer).not_to_have_class(re.compile(r"\bstreaming\b"), timeout=1_000)
    expect(answer.locator(".note")).to_have_text("Stopped.")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    shown = answer.locator(".text").inner_text()
    time.sleep(1.5)
    assert answer.locator(".text").inner_text() == shown, "deltas kept arriving after Stop"

    # The gateway was asked to stop that turn, on the user's inbound channel.
    turn = next(e for e in published_events(frames) if "messages" in e)
    stops = [e for e in published_events(frames) if e.get("action") == "stop"]
    assert stops == [{"action": "stop", "turnId": turn["turnId"]}]
    publish = next(f for f in frames if '"action' in f and "stop" in f)
    assert re.search(r'"channel":"/chat/[0-9a-f-]{36}"', publish)

    # The stopped turn's final event still updates the usage panel.
    expect(page.locator("#usage-updated")).to_contain_text("Updated", timeout=15_000)
    screenshot(page, "stopped")

    # And the conversation goes on.
    send(page, "Are you still there [tokens=5]")
    expect(wait_answered(page).locator(".meta")).to_contain_text("5 out tokens")
