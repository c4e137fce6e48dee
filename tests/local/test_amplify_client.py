"""AWS Amplify JS v6 works against the local gateway: the runnable example of docs/amplify.md.

Runs ``examples/amplify-client/client.mjs`` (pinned ``aws-amplify``, installed by ``make setup``
with ``npm ci``) with Node against a gateway on a free port. The program reads only the outputs
file and the CA it names; it signs in with SRP and with USER_PASSWORD_AUTH, is refused a wrong
password, posts one turn and reads all of it, is refused another user's channel, and closes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.local.gateway_harness import REPO_ROOT, start_gateway

pytestmark = pytest.mark.slow

EXAMPLE = REPO_ROOT / "examples" / "amplify-client"


def run_example(outputs_path) -> dict:
    node = shutil.which("node")
    assert node, "Node.js >= 20 is needed (see the README's prerequisites)"
    assert (EXAMPLE / "node_modules" / "aws-amplify").is_dir(), (
        "examples/amplify-client is not installed: run `make setup` (npm ci)"
    )
    env = {k: v for k, v in os.environ.items() if k != "NODE_EXTRA_CA_CERTS"}
    env["OUTPUTS"] = str(outputs_path)
    done = subprocess.run(
        [node, "client.mjs"], cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=120
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no summary (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    summary = json.loads(lines[-1])
    assert done.returncode == 0, f"{summary}\n{done.stderr}"
    return summary


def test_amplify_signs_in_both_ways_chats_and_is_refused_another_users_channel(tmp_path):
    gateway = start_gateway(tmp_path, "--stack", "dev", "--tokens-per-second", "0")
    try:
        summary = run_example(gateway.outputs_path)
    finally:
        gateway.stop()

    assert summary["ok"] is True
    assert summary["srpSignIn"] and summary["passwordSignIn"]
    assert summary["wrongPassword"] == "NotAuthorizedException"
    assert summary["types"] == ["delta", "done"]
    assert summary["last"]["seq"] == summary["events"] - 1
    assert summary["last"]["usage"]["outputTokens"] == 12
    assert "UnauthorizedException" in summary["otherChannel"]
    assert summary["closeAllMs"] < 5000
