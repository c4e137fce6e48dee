"""A local gateway on the tiny stack and Debian's headless Chromium, driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.local.gateway_harness import Gateway, start_gateway

CHROMIUM = Path("/usr/bin/chromium")
TINY_STACK = Path(__file__).with_name("tiny-stack.yaml")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A response the test itself serves (the CSP test adds a header with Playwright's route) has
    # no server address, so Local Network Access checks would block its page from reaching the
    # gateway on loopback; pages the gateway serves are loopback anyway.
    "--disable-features=LocalNetworkAccessChecks",
]


@pytest.fixture(scope="module")
def tiny_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(
        tmp_path_factory.mktemp("e2e-gateway"),
        "--stack",
        "e2e",
        "--config-file",
        str(TINY_STACK),
        "--tokens-per-second",
        "100",
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
            device_scale_factor=1,
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser, tiny_gateway):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    origin = f"http://127.0.0.1:{tiny_gateway.port}"
    page.goto(f"{origin}/")
    yield page
    page.close()  # the page saves its conversation as it goes away
    forget_everything(browser, origin)
    assert errors == [], f"uncaught errors in the page: {errors}"


def forget_everything(browser, origin: str) -> None:
    """Clear what the chat page keeps in the browser (tokens, conversations) for `origin`."""
    blank = browser.new_page()
    blank.goto(f"{origin}/config.json")  # same origin, none of the page's own code
    blank.evaluate("localStorage.clear()")
    blank.close()
