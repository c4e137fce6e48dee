"""An operator blocks a user who is signed in and chatting: the page's next message is refused at
once with the account_blocked refusal, in words the user can act on."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import screenshot, send, sign_in_as, wait_answered
from tests.local.gateway_harness import run_admin

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_blocked_user_is_refused_on_the_next_message_with_its_own_words(page: Page, tiny_gateway):
    # GIVEN a signed-in user whose first message is answered
    sign_in_as(page, "roomy-user")
    send(page, "Hello before the block")
    expect(wait_answered(page).locator(".meta")).to_have_count(1)

    # WHEN the operator blocks the account with the admin CLI (the page keeps its token)
    done = run_admin(tiny_gateway, "block", "roomy-user")
    assert done.returncode == 0, done.stderr

    # THEN the next message is refused at once, saying what happened and whom to ask
    send(page, "Hello after the block")
    problem = wait_answered(page).locator(".problem")
    expect(problem).to_have_attribute("data-code", "account_blocked")
    expect(problem).to_contain_text("This account is blocked; contact the service's operator.")
    expect(problem).not_to_contain_text("try again")
    screenshot(page, "account-blocked")
