"""Connection life in a browser: a dropped socket, a restarted local gateway, limits on error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import TINY_STACK, forget_everything
from tests.e2e.ui import (
    RECORD_SOCKETS,
    last_answer,
    screenshot,
    send,
    sign_in_as,
    usage_of,
    wait_answered,
)
from tests.local.gateway_harness import free_port, start_gateway

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Moves the stored tokens' expiry into the past, as an hour's wait would; Amplify reads expiry from
# the token's payload (the gateway would also refuse them: their signature no longer matches).
EXPIRE_TOKENS = r"""
() => {
  const b64 = (s) => atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const unb64 = (s) => btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  let aged = 0;
  for (const key of Object.keys(localStorage)) {
    if (!/\.(accessToken|idToken)$/.test(key)) continue;
    const [header, payload, signature] = localStorage.getItem(key).split('.');
    const claims = JSON.parse(b64(payload));
    claims.exp = Math.floor(Date.now() / 1000) - 60;
    localStorage.setItem(key, [header, unb64(JSON.stringify(claims)), signature].join('.'));
    aged += 1;
  }
  return aged;
}
"""

GATEWAY_ARGS = ("--stack", "e2e", "--config-file", str(TINY_STACK), "--tokens-per-second", "100")


def test_a_dropped_connection_reconnects_and_the_cut_off_answer_is_marked_interrupted(
    page: Page,
):
    page.add_init_script(RECORD_SOCKETS)
    page.reload()
    sign_in_as(page, "roomy-user")

    send(page, "A long answer please [tokens=1500]")
    answer = last_answer(page)
    expect(answer.locator(".text")).to_contain_text("Local model reply", timeout=15_000)
    page.evaluate("window.__sockets.at(-1).close()")  # the network drops the socket

    # The answer is marked as cut off at once, never left streaming with a cursor.
    expect(answer).to_have_attribute("data-status", "interrupted", timeout=2_000)
    expect(answer).not_to_have_class(re.compile(r"\bstreaming\b"))
    expect(answer.locator(".note")).to_contain_text("Interrupted")
    expect(page.locator("#connection")).to_have_text("Reconnecting…")
    screenshot(page, "reconnecting")

    # Amplify opens a new socket and the chat goes on.
    expect(page.locator("#connection")).to_have_text("Connected", timeout=20_000)
    assert page.evaluate("window.__sockets.length") == 2
    send(page, "Back again [tokens=6]")
    expect(wait_answered(page).locator(".meta")).to_contain_text("6 out tokens")
    expect(page.locator(".message.assistant").first).to_have_attribute("data-status", "interrupted")


def refresh_is_offered(page: Page) -> bool:
    """Whether the page's Cognito endpoint answers Amplify's token refresh operation at all."""
    status = page.evaluate(
        """() => fetch('cognito-idp/', {method: 'POST', body: '{}', headers: {
             'Content-Type': 'application/x-amz-json-1.1',
             'X-Amz-Target': 'AWSCognitoIdentityProviderService.GetTokensFromRefreshToken'}})
           .then((r) => r.json())"""
    )
    return "not available" not in status.get("message", "")


def test_expired_tokens_are_refreshed_or_the_user_is_sent_back_to_sign_in(page: Page):
    page.add_init_script(RECORD_SOCKETS)
    page.reload()
    sign_in_as(page, "roomy-user")
    assert page.evaluate(EXPIRE_TOKENS) == 2
    page.evaluate("window.__sockets.at(-1).close()")

    if refresh_is_offered(page):
        # Amplify refreshes the tokens with the refresh token and reconnects.
        expect(page.locator("#connection")).to_have_text("Connected", timeout=20_000)
        send(page, "Still signed in [tokens=3]")
        expect(wait_answered(page).locator(".meta")).to_contain_text("3 out tokens")
    else:
        # The local user pool (moto) cannot refresh Amplify's way: sign in again, told why.
        expect(page.locator("#sign-in-view")).to_be_visible(timeout=30_000)
        expect(page.locator("#notice")).to_contain_text("Sign in again")
        sign_in_as(page, "roomy-user")
    screenshot(page, "expired-tokens")


def test_a_restarted_local_gateway_sends_the_user_back_to_sign_in_with_a_message(browser, tmp_path):
    port = free_port()
    gateway = start_gateway(tmp_path, *GATEWAY_ARGS, port=port)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        sign_in_as(page, "roomy-user")
        send(page, "A long answer please [tokens=1500]")
        answer = last_answer(page)
        expect(answer.locator(".text")).to_contain_text("Local model reply", timeout=15_000)

        gateway.stop()
        expect(answer).to_have_attribute("data-status", "interrupted", timeout=5_000)
        expect(page.locator("#connection")).to_have_text("Reconnecting…")

        # A new gateway on the same port has a new user pool: the old tokens are refused.
        gateway = start_gateway(tmp_path, *GATEWAY_ARGS, port=port)
        expect(page.locator("#sign-in-view")).to_be_visible(timeout=30_000)
        expect(page.locator("#notice")).to_contain_text("Sign in again")
        expect(page.get_by_label("Username", exact=True)).to_be_focused()
        screenshot(page, "signed-out-after-restart")

        sign_in_as(page, "roomy-user")
        send(page, "Hello new gateway [tokens=4]")
        expect(wait_answered(page).locator(".meta")).to_contain_text("4 out tokens")
    finally:
        page.close()
        if gateway.process.poll() is None:
            forget_everything(browser, f"http://127.0.0.1:{port}")
        gateway.stop()
    assert errors == [], f"uncaught errors in the page: {errors}"


def test_the_usage_panel_takes_the_limits_an_error_carries(page: Page):
    sign_in_as(page, "tiny-user")
    for turn in range(1, 5):
        send(page, f"Use up my allowance, part {turn}")
        if wait_answered(page).locator(".problem").count():
            break
    expect(last_answer(page).locator('.problem[data-code="limit_exceeded"]')).to_have_count(1)

    # A fresh page asks the gateway: the used-up window shows as such before any turn.
    page.reload()
    expect(page.locator("#connection")).to_have_text("Connected", timeout=15_000)
    output = page.locator('#usage-list dd[data-window="dailyOutputTokens"]')
    expect(output.locator(".usage-figures")).to_have_text("0 left of 80 tokens")
    expect(output).to_contain_text("Limit reached")
    page.get_by_role("button", name="New chat").click()
    send(page, "One more, please")
    expect(wait_answered(page).locator(".problem")).to_have_attribute("data-code", "limit_exceeded")

    # The error's own limits fill the panel: what is left, against the allowance.
    assert usage_of(page, "dailyOutputTokens") == "0 left of 80 tokens"
    assert re.fullmatch(r"[\d,]+ left of 2,000 tokens", usage_of(page, "dailyInputTokens"))
    assert usage_of(page, "monthlyOutputTokens") == "720 left of 800 tokens"
    exhausted = page.locator('#usage-list dd[data-window="dailyOutputTokens"]')
    expect(exhausted.locator(".meter")).to_have_class(re.compile(r"\bfull\b"))
    expect(exhausted).to_contain_text("Limit reached · available again from")
    screenshot(page, "limits-on-error")
