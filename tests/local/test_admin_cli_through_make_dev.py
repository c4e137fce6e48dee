"""``python -m tools.admin`` against ``python -m local`` (what ``make dev`` runs): a gateway of its
own (these tests move, block and reset its demo users), real sign-ins, real turns over the
WebSocket and the ``/v1`` door, and the CLI run as an operator runs it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.local.gateway_harness import (
    Gateway,
    chat_event,
    connect,
    run_admin,
    sign_in,
    start_gateway,
)

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def own_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(
        tmp_path_factory.mktemp("admin"), "--stack", "dev", "--tokens-per-second", "0"
    )
    try:
        yield running
    finally:
        running.stop()


def admin(gateway: Gateway, *args: str, json_out: bool = True) -> subprocess.CompletedProcess[str]:
    return run_admin(gateway, *(["--json"] if json_out else []), *args)


def admin_json(gateway: Gateway, *args: str) -> Any:
    done = admin(gateway, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def audit_lines(gateway: Gateway) -> list[dict[str, Any]]:
    path = REPO_ROOT / gateway.outputs["adminAuditFile"]
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def fresh_tokens(gateway: Gateway, tier: str) -> dict[str, str]:
    username, password = gateway.password_of(tier)
    return sign_in(gateway.outputs, username, password)


def chat(gateway: Gateway, tokens: dict[str, str], text: str = "Hi [tokens=7]") -> dict[str, Any]:
    """One turn over the Event API; its terminal event."""
    ns_in, ns_out = gateway.outputs["inboundNamespace"], gateway.outputs["outboundNamespace"]

    async def run() -> dict[str, Any]:
        async with connect(gateway, tokens["access"]) as events:
            await events.subscribe(f"/{ns_out}/{tokens['sub']}")
            await events.publish(f"/{ns_in}/{tokens['sub']}", [chat_event(text)])
            return (await events.turn())[-1]

    return asyncio.run(run())


def usage_request(gateway: Gateway, tokens: dict[str, str]) -> dict[str, Any]:
    ns_in, ns_out = gateway.outputs["inboundNamespace"], gateway.outputs["outboundNamespace"]

    async def ask() -> dict[str, Any]:
        async with connect(gateway, tokens["access"]) as events:
            await events.subscribe(f"/{ns_out}/{tokens['sub']}")
            await events.publish(f"/{ns_in}/{tokens['sub']}", [json.dumps({"action": "usage"})])
            return json.loads((await events.recv_type("data", timeout=20))["event"])

    return asyncio.run(ask())


def openai_status(gateway: Gateway, token: str) -> tuple[int, dict[str, Any]]:
    with httpx2.Client(verify=gateway.ssl_context(), timeout=30) as http:
        answer = http.post(
            f"{gateway.outputs['openAiBaseUrl']}/chat/completions",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "model": "amazon.nova-lite-v1:0",
                "messages": [{"role": "user", "content": "Hi"}],
            },
        )
        return answer.status_code, answer.json()


def windows(document: dict[str, Any]) -> dict[str, Any]:
    return {w["window"]: w for w in document["windows"]}


def test_users_lists_every_demo_user_with_tier_and_status(own_gateway):
    rows = admin_json(own_gateway, "users")
    assert {(r["username"], r["tier"], r["status"]) for r in rows} >= {
        ("free-user", "free", "confirmed"),
        ("pro-user", "pro", "confirmed"),
    }
    only_pro = admin_json(own_gateway, "users", "--tier", "pro")
    assert [r["username"] for r in only_pro] == ["pro-user"]
    table = admin(own_gateway, "users", json_out=False)
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == [
        "username",
        "tier",
        "status",
    ]


def test_usage_after_a_real_turn_shows_the_windows_and_the_turn(own_gateway):
    tokens = fresh_tokens(own_gateway, "free")
    done = chat(own_gateway, tokens)
    assert done["type"] == "done", done
    report = admin_json(own_gateway, "usage", "free-user")
    assert report["sub"] == tokens["sub"] and report["tier"] == "free"
    daily = windows(report)["dailyOutputTokens"]
    assert daily["used"] == done["usage"]["outputTokens"] and daily["allowed"] > 0
    assert done["turnId"] in [t["turn_id"] for t in report["recentTurns"]]
    # the same user by sub
    assert admin_json(own_gateway, "usage", tokens["sub"])["username"] == "free-user"


def test_top_ranks_users_by_tokens_and_turns(own_gateway):
    chat(own_gateway, fresh_tokens(own_gateway, "pro"), "Hello [tokens=3]")
    chat(own_gateway, fresh_tokens(own_gateway, "free"), "Again [tokens=40]")
    by_tokens = admin_json(own_gateway, "top", "--by", "tokens", "--days", "1")
    assert by_tokens[0]["username"] == "free-user"
    assert by_tokens[0]["tokens"] > by_tokens[1]["tokens"]
    by_turns = admin_json(own_gateway, "top", "--by", "turns")
    assert by_turns[0]["username"] == "free-user" and by_turns[0]["turns"] >= 2


def test_set_tier_takes_effect_at_a_fresh_sign_in(own_gateway):
    before = len(audit_lines(own_gateway))
    done = admin(own_gateway, "set-tier", "pro-user", "free", json_out=False)
    assert done.returncode == 0, done.stderr
    assert "next sign-in or token refresh" in done.stdout
    assert "live up to 1 hour" in done.stdout  # make dev's app client, as the stacks declare it
    answer = usage_request(own_gateway, fresh_tokens(own_gateway, "pro"))
    assert answer["type"] == "usage" and answer["tier"] == "free"
    # the free tier's allowances (Pulumi.dev.yaml), not pro's
    assert answer["limits"]["dailyInputTokens"]["allowed"] == 20_000
    assert answer["models"] == ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"]
    assert admin_json(own_gateway, "usage", "pro-user")["tier"] == "free"
    line = audit_lines(own_gateway)[before]
    assert (line["who"], line["action"], line["target"]["username"]) == (
        "local",
        "set-tier",
        "pro-user",
    )
    assert (line["before"]["tier"], line["after"]["tier"]) == ("pro", "free")
    # and back
    assert admin(own_gateway, "set-tier", "pro-user", "pro").returncode == 0
    assert usage_request(own_gateway, fresh_tokens(own_gateway, "pro"))["tier"] == "pro"


def test_block_refuses_a_held_token_on_both_doors_and_unblock_lets_a_new_sign_in_in(own_gateway):
    held = fresh_tokens(own_gateway, "pro")
    assert chat(own_gateway, held)["type"] == "done"
    time.sleep(1.1)  # block in a later second than the held token's sign-in
    blocked = admin(own_gateway, "block", "pro-user")
    assert blocked.returncode == 0, blocked.stderr
    assert admin_json(own_gateway, "usage", "pro-user")["status"] == "blocked"
    # the Events door: the held token's next turn is refused at once
    refused = chat(own_gateway, held)
    assert (refused["type"], refused["code"]) == ("error", "account_blocked")
    # the /v1 door: 403 with the same code
    status, body = openai_status(own_gateway, held["access"])
    assert (status, body["error"]["code"]) == (403, "account_blocked")
    unblocked = admin(own_gateway, "unblock", "pro-user")
    assert unblocked.returncode == 0, unblocked.stderr
    # the held token stays refused; a new sign-in (a later second) is admitted
    assert chat(own_gateway, held)["code"] == "account_blocked"
    time.sleep(1.1)
    assert chat(own_gateway, fresh_tokens(own_gateway, "pro"))["type"] == "done"
    actions = [(a["action"], a["target"]["username"]) for a in audit_lines(own_gateway)]
    assert ("block", "pro-user") in actions and ("unblock", "pro-user") in actions


def test_reset_clears_the_window_after_confirmation(own_gateway):
    chat(own_gateway, fresh_tokens(own_gateway, "free"))
    assert windows(admin_json(own_gateway, "usage", "free-user"))["dailyOutputTokens"]["used"] > 0
    # without --yes and with no terminal to confirm on, nothing changes
    declined = admin(own_gateway, "reset", "free-user", "--window", "daily")
    assert declined.returncode == 1 and "nothing changed" in declined.stderr
    assert windows(admin_json(own_gateway, "usage", "free-user"))["dailyOutputTokens"]["used"] > 0
    done = admin(own_gateway, "reset", "free-user", "--window", "daily", "--yes")
    assert done.returncode == 0, done.stderr
    after = windows(admin_json(own_gateway, "usage", "free-user"))
    assert after["dailyInputTokens"]["used"] == after["dailyOutputTokens"]["used"] == 0
    assert after["monthlyOutputTokens"]["used"] > 0  # only the window asked for
    assert audit_lines(own_gateway)[-1]["action"] == "reset"


@pytest.mark.parametrize(
    ("args", "code", "named"),
    [
        (("usage", "nobody"), 1, "nobody"),
        (("block", "nobody"), 1, "nobody"),
        (("set-tier", "free-user", "platinum"), 1, "platinum"),
        (("users", "--tier", "platinum"), 1, "platinum"),
        (("reset", "free-user", "--window", "weekly", "--yes"), 2, "weekly"),
    ],
)
def test_bad_input_is_named_exits_non_zero_and_changes_nothing(own_gateway, args, code, named):
    before_audit = len(audit_lines(own_gateway))
    before_users = admin_json(own_gateway, "users")
    done = admin(own_gateway, *args)
    assert done.returncode == code
    assert named in done.stderr
    assert len(audit_lines(own_gateway)) == before_audit
    assert admin_json(own_gateway, "users") == before_users
