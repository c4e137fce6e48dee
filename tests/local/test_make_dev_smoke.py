"""``make dev`` smoke: start the dev stack, sign in a demo user, finish a turn, stop, start again.

Runs ``python -m local`` (what ``make dev`` runs) on a free port with its own outputs file, so a
developer's running gateway and ``.local/outputs.json`` are left alone.
"""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

from tests.local.gateway_harness import (
    STOP_LIMIT_SECONDS,
    chat_event,
    connect,
    sign_in,
    start_gateway,
)

pytestmark = pytest.mark.slow

OUTPUT_NAMES = {
    "region",
    "userPoolId",
    "userPoolClientId",
    "eventsHttpEndpoint",
    "eventsRealtimeEndpoint",
    "inboundNamespace",
    "outboundNamespace",
    "awsEndpointUrl",
    "demoUsers",
}


def test_make_dev_serves_a_chat_turn_stops_on_sigterm_and_restarts_on_the_same_port(tmp_path):
    gateway = start_gateway(tmp_path, "--stack", "dev", "--tokens-per-second", "0")
    try:
        outputs = json.loads(gateway.outputs_path.read_text())
        assert set(outputs) >= OUTPUT_NAMES
        assert outputs["eventsHttpEndpoint"].endswith("/event")
        assert outputs["eventsRealtimeEndpoint"].endswith("/event/realtime")
        assert {u["tier"] for u in outputs["demoUsers"]} == {"free", "pro"}

        user = outputs["demoUsers"][0]
        tokens = sign_in(outputs, user["username"], user["password"])

        async def one_turn():
            async with connect(gateway, tokens["id"]) as client:
                ns_out, ns_in = outputs["outboundNamespace"], outputs["inboundNamespace"]
                await client.subscribe(f"/{ns_out}/{tokens['sub']}")
                await client.publish(f"/{ns_in}/{tokens['sub']}", [chat_event("Hello [tokens=20]")])
                return await client.turn()

        events = asyncio.run(one_turn())
        assert events[-1]["type"] == "done"
        assert events[-1]["usage"]["outputTokens"] == 20
        first_key = gateway.iam_credentials()
    finally:
        stopped_in = gateway.stop(signal.SIGTERM)
    assert gateway.process.returncode == 0, gateway.log()
    assert stopped_in < STOP_LIMIT_SECONDS

    again = start_gateway(tmp_path, "--stack", "dev", port=gateway.port)
    try:
        assert again.outputs["eventsHttpEndpoint"] == outputs["eventsHttpEndpoint"]
        # The functions' IAM key pair is made anew at each start, never a constant.
        assert again.iam_credentials()[0] != first_key[0]
        assert again.iam_credentials()[1] != first_key[1]
        assert again.outputs["caCertFile"] == outputs["caCertFile"]  # one CA per machine
    finally:
        stopped_in = again.stop(signal.SIGINT)
    assert again.process.returncode == 0, again.log()
    assert stopped_in < STOP_LIMIT_SECONDS


def test_a_second_gateway_on_a_taken_port_fails_with_a_clear_message(gateway, tmp_path):
    with pytest.raises(RuntimeError) as failed:
        start_gateway(tmp_path, "--stack", "dev", port=gateway.port)
    assert f"error: cannot listen on 127.0.0.1:{gateway.port}" in str(failed.value)
    assert "Traceback" not in str(failed.value)


def test_an_unknown_stack_fails_before_starting_anything(tmp_path):
    with pytest.raises(RuntimeError) as failed:
        start_gateway(tmp_path, "--stack", "nosuchstack")
    assert "Pulumi.nosuchstack.yaml not found" in str(failed.value)
    assert "Traceback" not in str(failed.value)
