"""The page opened on a deep path, as the hosting serves it: index.html for any route of the app
(its CloudFront function), under the hosting's own Content-Security-Policy. Every asset loads
from the site root and nothing is refused or logged as an error."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route, expect

from components.web_content import content_security_policy

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_deep_path_renders_under_the_hostings_policy_without_console_errors(
    page: Page, tiny_gateway
):
    origin = f"http://127.0.0.1:{tiny_gateway.port}"
    policy = content_security_policy(
        "us-east-1", f"{origin}/event", f"ws://127.0.0.1:{tiny_gateway.port}/event/realtime"
    )

    def as_hosted(route: Route) -> None:
        # What the hosting's routing function does: a path whose last segment has no file
        # extension is a route of the app and gets index.html; the response carries the CSP.
        last = route.request.url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        if "." in last:
            route.continue_()
            return
        response = route.fetch(url=f"{origin}/")
        route.fulfill(
            response=response, headers={**response.headers, "content-security-policy": policy}
        )

    console_errors: list[str] = []
    failed: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.route(f"{origin}/some/**", as_hosted)
    page.add_init_script(
        """window.__violations = [];
           document.addEventListener('securitypolicyviolation', (e) =>
             window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));"""
    )
    page.goto(f"{origin}/some/deep/path")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__violations") == []
    assert failed == []
    assert console_errors == []
    icon = page.evaluate("document.querySelector('link[rel=icon]').href")
    assert icon.startswith(f"{origin}/assets/favicon-")
