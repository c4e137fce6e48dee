"""Sign-in through Amplify JS in a real browser: the flow config.json names, SRP by default."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e.ui import screenshot, send, sign_in_as, wait_answered

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def record_cognito_calls(page: Page) -> list[tuple[str, dict]]:
    """(operation, request body) of every Cognito call the page makes."""
    calls: list[tuple[str, dict]] = []

    def seen(request) -> None:
        target = request.headers.get("x-amz-target", "")
        if target.startswith("AWSCognitoIdentityProviderService."):
            calls.append((target.split(".", 1)[1], json.loads(request.post_data or "{}")))

    page.on("request", seen)
    return calls


def test_the_page_signs_in_with_the_flow_its_config_names_and_chats(page: Page, tiny_gateway):
    calls = record_cognito_calls(page)
    config = page.evaluate("fetch('config.json').then((r) => r.json())")
    expected = config.get("authFlow", "USER_SRP_AUTH")
    screenshot(page, "sign-in")

    sign_in_as(page, "roomy-user")

    flows = [body["AuthFlow"] for op, body in calls if op == "InitiateAuth"]
    assert flows == [expected]
    if expected == "USER_SRP_AUTH":
        challenges = [body["ChallengeName"] for op, body in calls if op == "RespondToAuthChallenge"]
        assert challenges == ["PASSWORD_VERIFIER"]
    send(page, "Hello through Amplify [tokens=6]")
    expect(wait_answered(page).locator(".meta")).to_contain_text("6 out tokens")


def test_srp_sign_in_the_way_a_deployed_stack_requires(page: Page):
    def without_auth_flow(route: Route) -> None:
        response = route.fetch()
        config = response.json()
        config.pop("authFlow", None)  # a deployed stack's config names none: SRP
        route.fulfill(response=response, json=config)

    page.route("**/config.json", without_auth_flow)
    calls = record_cognito_calls(page)
    page.reload()

    page.get_by_role("button", name="roomy-user").click()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function(
        """() => !document.getElementById('sign-in-error').hidden
                 || document.getElementById('connection').textContent === 'Connected'""",
        timeout=15_000,
    )
    assert [body["AuthFlow"] for op, body in calls if op == "InitiateAuth"] == ["USER_SRP_AUTH"]
    expect(page.locator("#sign-in-error")).to_be_hidden()
    expect(page.locator("#connection")).to_have_text("Connected")


def test_a_wrong_password_is_reported_on_the_sign_in_form(page: Page):
    page.get_by_label("Username", exact=True).fill("tiny-user")
    page.get_by_label("Password", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-error")).to_contain_text("Incorrect username or password")
    expect(page.locator("#chat-view")).to_be_hidden()


def test_the_page_works_under_the_hostings_strict_content_security_policy(page: Page, tiny_gateway):
    origin = f"http://127.0.0.1:{tiny_gateway.port}"
    # What the hosting allows: the page's own files and the stack's endpoints, nothing inline.
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' ws://127.0.0.1:{tiny_gateway.port}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )

    def with_policy(route: Route) -> None:
        response = route.fetch()
        route.fulfill(
            response=response,
            headers={**response.headers, "content-security-policy": policy},
        )

    page.route(f"{origin}/", with_policy)
    page.add_init_script(
        """window.__violations = [];
           document.addEventListener('securitypolicyviolation', (e) =>
             window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));"""
    )
    page.reload()
    sign_in_as(page, "roomy-user")
    send(page, "Under a strict policy [tokens=8]")
    expect(wait_answered(page).locator(".meta")).to_contain_text("8 out tokens")
    assert page.evaluate("window.__violations") == []


def test_a_loopback_page_reaches_https_and_wss_endpoints_on_its_own_port_in_plain_text(
    page: Page, tiny_gateway
):
    # The local gateway's config names TLS endpoints (Amplify always asks for wss://); a page
    # opened over plain http on loopback talks to that same host and port without TLS.
    host = f"127.0.0.1:{tiny_gateway.port}"

    def tls_endpoints(route: Route) -> None:
        response = route.fetch()
        config = response.json()
        config["eventsHttpEndpoint"] = f"https://{host}/event"
        config["eventsRealtimeEndpoint"] = f"wss://{host}/event/realtime"
        route.fulfill(response=response, json=config)

    page.route("**/config.json", tls_endpoints)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.reload()
    sign_in_as(page, "roomy-user")
    send(page, "Over loopback [tokens=7]")
    expect(wait_answered(page).locator(".meta")).to_contain_text("7 out tokens")
    assert sockets == [f"ws://{host}/event/realtime"]
