"""``rate_limited`` and duplicate turns end to end through ``python -m local`` (what ``make dev``
runs): a gateway of its own (its demo users are rate-limited by these tests), the dev stack's
tiers (default request limits: 60 a minute), a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.local.gateway_harness import Gateway, connect, start_gateway

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(
        tmp_path_factory.mktemp("admission"), "--stack", "dev", "--tokens-per-second", "0"
    )
    try:
        yield running
    finally:
        running.stop()


async def _events_until(client, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Outbound events until ``count`` terminal events have arrived (acknowledgements of
    publishes still in flight and keep-alives skipped)."""
    events: list[dict[str, Any]] = []
    while sum(e["type"] in ("done", "error") for e in events) < count:
        message = await client.recv(timeout)
        if message.get("type") == "data":
            events.append(json.loads(message["event"]))
        else:
            assert message.get("type") in ("ka", "publish_success"), message
    return events


async def _publish(client, channel: str, events: list[str]) -> None:
    """Publish without waiting for the acknowledgement (answers may arrive first)."""
    await client.send(
        {
            "type": "publish",
            "id": str(uuid.uuid4()),
            "channel": channel,
            "events": events,
            "authorization": client.auth,
        }
    )


def _payload(turn_id: str, text: str = "Hello [tokens=5]") -> str:
    return json.dumps(
        {
            "conversationId": "c-e2e",
            "turnId": turn_id,
            "messages": [{"role": "user", "content": [{"text": text}]}],
        }
    )


def test_a_publish_sent_twice_runs_once_and_the_copy_is_told_it_is_a_duplicate(own_gateway):
    tokens = own_gateway.sign_in("pro")
    ns_in, ns_out = (
        own_gateway.outputs["inboundNamespace"],
        own_gateway.outputs["outboundNamespace"],
    )
    turn_id = f"t-{uuid.uuid4().hex[:12]}"

    async def scenario() -> list[dict[str, Any]]:
        async with connect(own_gateway, tokens["id"]) as client:
            await client.subscribe(f"/{ns_out}/{tokens['sub']}")
            # the same event twice in one publish, as a retried publish would deliver it
            await _publish(client, f"/{ns_in}/{tokens['sub']}", [_payload(turn_id)] * 2)
            return await _events_until(client, 2)

    events = asyncio.run(scenario())
    original = [e for e in events if e["turnId"] == turn_id]
    assert [e["seq"] for e in original] == list(range(len(original)))
    assert original[-1]["type"] == "done"
    notices = [e for e in events if e["turnId"] != turn_id]
    assert [(e["seq"], e["code"], e["duplicateOf"], e["retryable"]) for e in notices] == [
        (0, "duplicate_turn", turn_id, False)
    ]


def test_a_user_past_the_request_rate_gets_rate_limited(own_gateway):
    tokens = own_gateway.sign_in("free")
    ns_in, ns_out = (
        own_gateway.outputs["inboundNamespace"],
        own_gateway.outputs["outboundNamespace"],
    )

    async def scenario() -> list[dict[str, Any]]:
        async with connect(own_gateway, tokens["id"]) as client:
            await client.subscribe(f"/{ns_out}/{tokens['sub']}")
            # 60 invalid events (12 publishes of 5), each counted against the rate
            for _ in range(12):
                await _publish(client, f"/{ns_in}/{tokens['sub']}", ['{"not": "a turn"}'] * 5)
            invalid = await _events_until(client, 60)
            assert {e["code"] for e in invalid} == {"invalid_request"}
            await _publish(client, f"/{ns_in}/{tokens['sub']}", [_payload("t-after")])
            return await _events_until(client, 1)

    (refusal,) = asyncio.run(scenario())
    assert (refusal["code"], refusal["retryable"], refusal["limit"]) == (
        "rate_limited",
        True,
        "requestsPerMinute",
    )
    assert refusal["resetsAt"].endswith("Z")
