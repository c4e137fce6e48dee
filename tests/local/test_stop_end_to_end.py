"""Stop, end to end through the local gateway (``make dev``): a client publishes a long turn on
the WebSocket, then ``{"action": "stop", "turnId"}``; the turn's own invocation sees the stop
written by the stop's invocation and ends with one ``done``, ``stopReason: "stopped"``."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.local.gateway_harness import connect, start_gateway

pytestmark = pytest.mark.slow

TOKENS_PER_SECOND = 20
ASKED_TOKENS = 400  # 20 s at this pace, unless stopped


def test_a_stop_published_on_the_websocket_ends_the_running_turn(tmp_path) -> None:
    gateway = start_gateway(
        tmp_path, "--stack", "dev", "--tokens-per-second", str(TOKENS_PER_SECOND)
    )
    try:
        tokens = gateway.sign_in("pro")
        outbound = f"/{gateway.outputs['outboundNamespace']}/{tokens['sub']}"
        inbound = f"/{gateway.outputs['inboundNamespace']}/{tokens['sub']}"
        turn_id = f"t-{uuid.uuid4().hex[:12]}"

        async def stopped_turn() -> tuple[list[dict], list[dict]]:
            async with connect(gateway, tokens["id"]) as client:
                assert (await client.subscribe(outbound))["type"] == "subscribe_success"
                turn = {
                    "conversationId": "c-stop",
                    "turnId": turn_id,
                    "messages": [
                        {"role": "user", "content": [{"text": f"Go on [tokens={ASKED_TOKENS}]"}]}
                    ],
                }
                received: list[dict] = []

                async def publish(payload: dict) -> None:
                    # Replies to earlier publishes may arrive before this one's acknowledgement.
                    await client.send(
                        {
                            "type": "publish",
                            "id": str(uuid.uuid4()),
                            "channel": inbound,
                            "events": [json.dumps(payload)],
                            "authorization": client.auth,
                        }
                    )
                    while True:
                        message = await client.recv_type("data", "publish_success", timeout=30)
                        if message["type"] == "publish_success":
                            return
                        received.append(json.loads(message["event"]))

                async def next_event() -> dict:
                    if received:
                        return received.pop(0)
                    return json.loads((await client.recv_type("data", timeout=30))["event"])

                await publish(turn)
                first = await next_event()
                # A malformed stop is answered like any bad event, under an id of its own.
                await publish({"action": "stop", "turnId": turn_id + "\n"})
                await publish({"action": "stop", "turnId": turn_id})
                events, others = [first], []
                while True:
                    event = await next_event()
                    (events if event["turnId"] == turn_id else others).append(event)
                    if event["turnId"] == turn_id and event["type"] in ("done", "error"):
                        return events, others

        events, others = asyncio.run(stopped_turn())

        # THEN the turn ended with exactly one terminal, done and stopped, seq gap-free
        assert [e["seq"] for e in events] == list(range(len(events)))
        assert [e["type"] for e in events if e["type"] != "delta"] == ["done"]
        done = events[-1]
        assert done["stopReason"] == "stopped"
        # AND far fewer tokens than asked for were produced and charged
        assert 0 < done["usage"]["outputTokens"] < ASKED_TOKENS / 2
        # AND the malformed stop got its invalid_request; the valid one no event at all
        assert [(e["type"], e.get("code")) for e in others] == [("error", "invalid_request")]
    finally:
        gateway.stop()
