"""The official ``openai`` npm package (examples/openai-node, pinned by its lock file) against
``python -m local``'s /v1: the same cases as the Python SDK's, run the way docs/openai.md tells a
Node.js developer to (``OPENAI_BASE_URL``, the access token as ``OPENAI_API_KEY``, the local CA
through ``NODE_EXTRA_CA_CERTS``). Its own gateway: the rate and the window are per user."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.local.gateway_harness import REPO_ROOT, Gateway, start_gateway
from tests.local.test_openai_door_through_make_dev import STACK_FILE, _forged, used

pytestmark = pytest.mark.slow

EXAMPLE = REPO_ROOT / "examples" / "openai-node"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    assert shutil.which("node"), "Node.js is needed (make test installs the example with npm ci)"
    assert (EXAMPLE / "node_modules" / "openai").is_dir(), "run make openai-node-deps"
    running = start_gateway(
        tmp_path_factory.mktemp("openai-node"),
        "--config-file",
        str(STACK_FILE),
        "--tokens-per-second",
        "50",
    )
    try:
        yield running
    finally:
        running.stop()


def node(gateway: Gateway, token: str, *args: str, model: str | None = None) -> dict[str, Any]:
    env = {
        **os.environ,
        "OPENAI_BASE_URL": gateway.outputs["openAiBaseUrl"],
        "OPENAI_API_KEY": token,
        "NODE_EXTRA_CA_CERTS": str(Path(gateway.ca_file)),
    }
    if model:
        env["MODEL"] = model
    done = subprocess.run(
        ["node", "client.mjs", *args],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_models_complete_and_stream(gateway):
    token = gateway.sign_in("chat")["access"]
    assert node(gateway, token, "models") == {
        "models": ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"]
    }
    whole = node(gateway, token, "complete", "Hello [tokens=5]")
    assert (whole["finish"], whole["usage"]["completion_tokens"]) == ("stop", 5)
    streamed = node(gateway, token, "stream", "Hello [tokens=5]")
    assert streamed["text"] == whole["text"]
    assert streamed["usage"]["completion_tokens"] == 5


def test_refusals_are_the_sdks_errors(gateway):
    tiny = gateway.sign_in("tiny")["access"]
    assert node(gateway, tiny, "complete", model="amazon.nova-lite-v1:0") == {
        "error": "PermissionDeniedError",
        "status": 403,
        "code": "model_not_allowed",
        "retryAfter": None,
    }
    forged = node(gateway, _forged(tiny), "complete")
    assert (forged["error"], forged["status"]) == ("AuthenticationError", 401)


def test_the_request_rate_and_a_window_are_rate_limit_errors_with_retry_after(gateway):
    slow = gateway.sign_in("slow")["access"]
    for _ in range(3):
        assert "text" in node(gateway, slow, "complete", "Hi [tokens=1]")
    rate = node(gateway, slow, "complete")
    assert (rate["error"], rate["code"]) == ("RateLimitError", "rate_limited")
    assert int(rate["retryAfter"]) >= 1

    tiny = gateway.sign_in("tiny")["access"]
    assert node(gateway, tiny, "complete", "Go [tokens=10]")["usage"]["completion_tokens"] == 10
    assert node(gateway, tiny, "complete", "Go [tokens=10]")["finish"] == "length"
    window = node(gateway, tiny, "complete")
    assert (window["error"], window["code"]) == ("RateLimitError", "limit_exceeded")
    assert int(window["retryAfter"]) >= 1


def test_a_client_that_aborts_mid_stream_is_charged_only_what_was_produced(gateway):
    before = used(gateway, "chat")["dailyOutputTokens"]
    token = gateway.sign_in("chat")["access"]
    assert node(gateway, token, "cancel", "Long [tokens=400]") == {"pieces": 5}
    time.sleep(2.0)
    charged = used(gateway, "chat")["dailyOutputTokens"] - before
    assert 5 <= charged < 200
