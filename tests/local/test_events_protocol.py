"""The local Event API speaks AppSync Events' WebSocket protocol and HTTP publish API.

Each test talks to a running ``python -m local`` with the ``websockets`` library and boto3/botocore
only, as a client app would.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import uuid
from pathlib import Path

import jwt
import moto
import pytest
import urllib3
import websockets

from tests.local.gateway_harness import (
    Gateway,
    chat_event,
    connect,
    header_protocol,
    signed_publish,
)

_pools: dict[str, urllib3.PoolManager] = {}


def https(gateway: Gateway) -> urllib3.PoolManager:
    """An HTTPS client that trusts the gateway's CA (and nothing it was not told to)."""
    key = str(gateway.ca_file)
    if key not in _pools:
        _pools[key] = urllib3.PoolManager(ca_certs=key)
    return _pools[key]


def run(coro):
    return asyncio.run(coro)


def outbound(gateway: Gateway, sub: str) -> str:
    return f"/{gateway.outputs['outboundNamespace']}/{sub}"


def inbound(gateway: Gateway, sub: str) -> str:
    return f"/{gateway.outputs['inboundNamespace']}/{sub}"


def http_publish(
    gateway: Gateway,
    document: dict,
    *,
    secret: str | None = None,
    body: bytes | None = None,
    headers: dict | None = None,
):
    raw = json.dumps(document).encode()
    key_id, own_secret = gateway.iam_credentials()
    url, signed = signed_publish(gateway, raw, access_key=key_id, secret_key=secret or own_secret)
    response = https(gateway).request(
        "POST",
        url,
        body=body if body is not None else raw,
        headers=headers if headers is not None else signed,
    )
    return response.status, json.loads(response.data)


def forged_token(gateway: Gateway, **overrides) -> str:
    """A token signed with moto's published test key, with chosen claims."""
    keys = Path(moto.__file__).parent / "cognitoidp" / "resources" / "jwks-private.json.gz"
    key = jwt.PyJWK(json.loads(gzip.decompress(keys.read_bytes()))).key
    now = int(time.time())
    claims = {
        "iss": f"https://cognito-idp.{gateway.outputs['region']}.amazonaws.com/"
        f"{gateway.outputs['userPoolId']}",
        "sub": str(uuid.uuid4()),
        "aud": gateway.outputs["userPoolClientId"],
        "token_use": "id",
        "iat": now,
        "exp": now + 600,
        "cognito:username": "forged",
    }
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "dummy"})


async def refused_connection(gateway: Gateway, protocols: list[str]) -> dict:
    async with websockets.connect(
        gateway.outputs["eventsRealtimeEndpoint"], subprotocols=protocols, ssl=gateway.ssl_context()
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        return message


# --- connecting -----------------------------------------------------------------------------


def test_connection_init_is_acknowledged_with_a_connection_timeout(gateway):
    async def scenario():
        async with connect(gateway, gateway.sign_in("free")["id"], init=False) as client:
            assert client.ws.subprotocol == "aws-appsync-event-ws"
            await client.send({"type": "connection_init"})
            return await client.recv()

    ack = run(scenario())
    assert ack["type"] == "connection_ack"
    assert ack["connectionTimeoutMs"] >= 60_000


def test_keep_alive_messages_arrive_after_the_ack(gateway):
    async def scenario():
        async with connect(gateway, gateway.sign_in("free")["id"]) as client:
            return await client.recv(timeout=5)

    assert run(scenario()) == {"type": "ka"}


def test_access_tokens_are_accepted_like_id_tokens(gateway):
    async def scenario():
        async with connect(gateway, gateway.sign_in("free")["access"]) as client:
            return await client.subscribe(outbound(gateway, gateway.sign_in("free")["sub"]))

    assert run(scenario())["type"] == "subscribe_success"


def test_connecting_without_the_authorization_subprotocol_is_refused(gateway):
    message = run(refused_connection(gateway, ["aws-appsync-event-ws"]))
    assert message["type"] == "connection_error"
    assert message["errors"][0]["errorType"] == "UnauthorizedException"


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": int(time.time()) - 60}, id="expired"),
        pytest.param({"aud": "another-client"}, id="other-app-client"),
        pytest.param({"iss": "https://cognito-idp.us-east-1.amazonaws.com/other"}, id="other-pool"),
        pytest.param({"token_use": "refresh"}, id="wrong-token-use"),
    ],
)
def test_tokens_failing_a_claim_check_are_refused(gateway, claims):
    token = forged_token(gateway, **claims)
    auth = header_protocol({"host": gateway.host, "Authorization": token})
    message = run(refused_connection(gateway, ["aws-appsync-event-ws", auth]))
    assert message["type"] == "connection_error"
    assert message["errors"][0]["errorType"] == "UnauthorizedException"


def test_a_tampered_token_is_refused(gateway):
    header, payload, signature = gateway.sign_in("free")["id"].split(".")
    tampered = f"{header}.{payload}.{signature[:-6]}AAAAAA"
    auth = header_protocol({"host": gateway.host, "Authorization": tampered})
    message = run(refused_connection(gateway, ["aws-appsync-event-ws", auth]))
    assert message["errors"][0]["errorType"] == "UnauthorizedException"


def test_the_event_ws_subprotocol_is_required(gateway):
    auth = header_protocol({"host": gateway.host, "Authorization": gateway.sign_in("free")["id"]})

    async def scenario():
        async with websockets.connect(
            gateway.outputs["eventsRealtimeEndpoint"],
            subprotocols=[auth],
            ssl=gateway.ssl_context(),
        ):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        run(scenario())
    assert refused.value.response.status_code == 400


# --- subscribing --------------------------------------------------------------------------------


def test_a_user_may_subscribe_to_their_own_outbound_channel(gateway):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            return await client.subscribe(outbound(gateway, tokens["sub"]), "mine")

    assert run(scenario()) == {"type": "subscribe_success", "id": "mine"}


@pytest.mark.parametrize("channel", ["other", "*"], ids=["other-user", "wildcard"])
def test_subscribing_to_another_users_channel_is_refused_by_the_subscribe_handler(gateway, channel):
    pro = gateway.sign_in("pro")
    target = outbound(gateway, pro["sub"] if channel == "other" else "*")

    async def scenario():
        async with connect(gateway, gateway.sign_in("free")["id"]) as client:
            return await client.subscribe(target, "theirs")

    refused = run(scenario())
    assert refused["type"] == "subscribe_error"
    assert refused["id"] == "theirs"
    assert refused["errors"][0]["errorType"] == "UnauthorizedException"


def test_users_cannot_subscribe_to_the_inbound_namespace(gateway):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            return await client.subscribe(inbound(gateway, tokens["sub"]))

    refused = run(scenario())
    assert refused["type"] == "subscribe_error"
    assert refused["errors"][0]["errorType"] == "UnauthorizedException"


@pytest.mark.parametrize(
    ("channel", "error_type"),
    [
        ("no-leading-slash", "BadRequestException"),
        ("/replies/bad_segment!", "BadRequestException"),
        ("/nosuchnamespace/abc", "BadRequestException"),
        ("/replies/a/b/c/d/e", "BadRequestException"),
    ],
)
def test_invalid_channels_get_a_subscribe_error(gateway, channel, error_type):
    async def scenario():
        async with connect(gateway, gateway.sign_in("free")["id"]) as client:
            return await client.subscribe(channel)

    refused = run(scenario())
    assert refused["type"] == "subscribe_error"
    assert refused["errors"][0]["errorType"] == error_type


def test_a_subscribe_without_authorization_is_refused(gateway):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            await client.send(
                {"type": "subscribe", "id": "s", "channel": outbound(gateway, tokens["sub"])}
            )
            return await client.recv_type("subscribe_error", "subscribe_success")

    refused = run(scenario())
    assert refused["type"] == "subscribe_error"
    assert refused["errors"][0]["errorType"] == "UnauthorizedException"


def test_a_subscription_id_cannot_be_reused_on_one_connection(gateway):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            first = await client.subscribe(outbound(gateway, tokens["sub"]), "same")
            second = await client.subscribe(outbound(gateway, tokens["sub"]), "same")
            return first, second

    first, second = run(scenario())
    assert first["type"] == "subscribe_success"
    assert second["type"] == "subscribe_error"


def test_after_unsubscribing_no_more_events_arrive(gateway):
    tokens = gateway.sign_in("free")
    channel = outbound(gateway, tokens["sub"])

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            await client.subscribe(channel, "s1")
            await client.send({"type": "unsubscribe", "id": "s1"})
            done = await client.recv_type("unsubscribe_success", "unsubscribe_error")
            status, _ = await asyncio.to_thread(
                http_publish, gateway, {"channel": channel, "events": ['{"after": true}']}
            )
            await client.send({"type": "unsubscribe", "id": "s1"})
            again = await client.recv_type("unsubscribe_success", "unsubscribe_error")
            return done, status, again

    done, status, again = run(scenario())
    assert done == {"type": "unsubscribe_success", "id": "s1"}
    assert status == 200
    # The next non-keep-alive message is the answer to the second unsubscribe, not a data event.
    assert again["type"] == "unsubscribe_error"


# --- publishing ---------------------------------------------------------------------------------


def test_an_iam_signed_http_publish_reaches_subscribers_in_order(gateway):
    tokens = gateway.sign_in("free")
    channel = outbound(gateway, tokens["sub"])
    events = [json.dumps({"n": n}) for n in range(5)]

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            sub = await client.subscribe(channel, "s")
            assert sub["type"] == "subscribe_success"
            status, body = await asyncio.to_thread(
                http_publish, gateway, {"channel": channel, "events": events}
            )
            received = [await client.recv_type("data") for _ in events]
            return status, body, received

    status, body, received = run(scenario())
    assert status == 200
    assert body["failed"] == []
    assert [s["index"] for s in body["successful"]] == [0, 1, 2, 3, 4]
    assert all(s["identifier"] for s in body["successful"])
    assert [m["id"] for m in received] == ["s"] * 5
    assert [m["event"] for m in received] == events


def test_an_http_publish_signed_with_other_credentials_is_unauthorized(gateway):
    channel = outbound(gateway, "someone")
    status, body = http_publish(gateway, {"channel": channel, "events": ["{}"]}, secret="wrong")
    assert status == 401
    assert body["errors"][0]["errorType"] == "UnauthorizedException"


def test_an_http_publish_whose_body_changed_after_signing_is_unauthorized(gateway):
    document = {"channel": outbound(gateway, "someone"), "events": ["{}"]}
    raw = json.dumps(document).encode()
    key_id, secret = gateway.iam_credentials()
    url, headers = signed_publish(gateway, raw, access_key=key_id, secret_key=secret)
    tampered = raw.replace(b"someone", b"somebody")
    response = https(gateway).request("POST", url, body=tampered, headers=headers)
    assert response.status == 401


def test_users_cannot_publish_to_the_outbound_namespace_with_their_token(gateway):
    tokens = gateway.sign_in("free")
    status, body = http_publish(
        gateway,
        {"channel": outbound(gateway, tokens["sub"]), "events": ["{}"]},
        headers={
            "content-type": "application/json",
            "host": gateway.host,
            "authorization": tokens["id"],
        },
    )
    assert status == 401
    assert body["errors"][0]["errorType"] == "UnauthorizedException"


def test_a_websocket_publish_is_acknowledged_with_identifiers(gateway):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            await client.subscribe(outbound(gateway, tokens["sub"]))
            ack = await client.publish(inbound(gateway, tokens["sub"]), [chat_event("Hi")])
            await client.turn()  # let the turn finish before the connection closes
            return ack

    ack = run(scenario())
    assert ack["type"] == "publish_success"
    assert ack["failed"] == []
    assert ack["successful"][0]["index"] == 0


@pytest.mark.parametrize("count", [0, 6])
def test_a_websocket_publish_needs_one_to_five_events(gateway, count):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            return await client.publish(inbound(gateway, tokens["sub"]), ["{}"] * count)

    refused = run(scenario())
    assert refused["type"] == "publish_error"
    assert refused["errors"][0]["errorType"] == "BadRequestException"


def test_an_http_publish_of_six_events_is_a_bad_request(gateway):
    status, body = http_publish(
        gateway, {"channel": outbound(gateway, "someone"), "events": ["{}"] * 6}
    )
    assert status == 400
    assert body["errors"][0]["errorType"] == "BadRequestException"


@pytest.mark.parametrize(
    "events", [["not json"], [{"an": "object"}], "a string"], ids=["bad-json", "object", "string"]
)
def test_events_must_be_strings_holding_json(gateway, events):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            return await client.publish(inbound(gateway, tokens["sub"]), events)

    refused = run(scenario())
    assert refused["type"] == "publish_error"
    assert refused["errors"][0]["errorType"] == "BadRequestException"


def test_an_http_publish_with_a_non_json_body_is_a_bad_request(gateway):
    status, body = http_publish(gateway, {}, body=b"{not json")
    assert status == 400
    assert body["errors"][0]["errorType"] == "BadRequestException"


def test_wildcard_channels_cannot_be_published_to(gateway):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            return await client.publish(f"/{gateway.outputs['inboundNamespace']}/*", ["{}"])

    assert run(scenario())["type"] == "publish_error"


# --- malformed frames ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "error_type"),
    [
        ("not json at all", "BadRequestException"),
        ("[1, 2, 3]", "BadRequestException"),
        (json.dumps({"type": "launch_rockets"}), "UnsupportedOperation"),
        (json.dumps({"type": "subscribe", "channel": "/replies/x"}), "BadRequestException"),
        (b"\x00\x01binary", "BadRequestException"),
    ],
    ids=["not-json", "array", "unknown-type", "missing-id", "binary"],
)
def test_malformed_frames_get_an_error_and_the_connection_stays_usable(gateway, frame, error_type):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            await client.send(frame) if isinstance(frame, str) else await client.ws.send(frame)
            error = await client.recv_type("error", "subscribe_error")
            still = await client.subscribe(outbound(gateway, tokens["sub"]))
            return error, still

    error, still = run(scenario())
    assert error["errors"][0]["errorType"] == error_type
    assert still["type"] == "subscribe_success"


def test_operations_before_connection_init_are_refused(gateway):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["id"], init=False) as client:
            await client.send(
                {
                    "type": "subscribe",
                    "id": "early",
                    "channel": outbound(gateway, tokens["sub"]),
                    "authorization": client.auth,
                }
            )
            return await client.recv()

    error = run(scenario())
    assert error["type"] == "error"
    assert error["id"] == "early"


# --- one chat turn through the real handlers ----------------------------------------------------


def test_a_published_turn_streams_back_deltas_and_one_done_in_seq_order(gateway):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            await client.subscribe(outbound(gateway, tokens["sub"]))
            await client.publish(inbound(gateway, tokens["sub"]), [chat_event("Tell me a story")])
            return await client.turn()

    events = run(scenario())
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "done"
    assert {e["type"] for e in events[:-1]} == {"delta"}
    assert "".join(e["text"] for e in events[:-1])
    assert set(events[-1]["limits"]) == {
        "dailyInputTokens",
        "dailyOutputTokens",
        "monthlyInputTokens",
        "monthlyOutputTokens",
    }


def test_a_model_outside_the_tier_allowlist_ends_the_turn_with_model_not_allowed(gateway):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["id"]) as client:
            await client.subscribe(outbound(gateway, tokens["sub"]))
            event = chat_event("Hi", model="amazon.nova-pro-v1:0")  # a pro-tier model
            await client.publish(inbound(gateway, tokens["sub"]), [event])
            return await client.turn()

    events = run(scenario())
    assert events[-1]["type"] == "error"
    assert events[-1]["code"] == "model_not_allowed"
