"""The local gateway on a shared machine: one TLS/plain port, hosts, origins, limits, bad JSON.

Each test talks to a running ``python -m local`` as a client (or a hostile page) would.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import urllib3
import websockets

from local.channels import InvalidChannel, parse_channel
from local.events_api import MAX_SUBSCRIPTIONS_PER_CONNECTION
from local.guard import AccessPolicy
from tests.local.gateway_harness import Gateway, connect


def run(coro):
    return asyncio.run(coro)


def plain_url(gateway: Gateway, path: str) -> str:
    return f"http://127.0.0.1:{gateway.port}{path}"


def tls_url(gateway: Gateway, path: str) -> str:
    return f"https://127.0.0.1:{gateway.port}{path}"


def request(gateway: Gateway, method: str, url: str, **kwargs) -> urllib3.BaseHTTPResponse:
    pool = urllib3.PoolManager(ca_certs=str(gateway.ca_file), retries=False)
    return pool.request(method, url, **kwargs)


def outbound(gateway: Gateway, sub: str) -> str:
    return f"/{gateway.outputs['outboundNamespace']}/{sub}"


# --- one port, TLS or plain -----------------------------------------------------------------


def test_the_outputs_name_tls_endpoints_and_the_ca_that_signs_them(gateway):
    assert gateway.outputs["eventsHttpEndpoint"] == f"https://127.0.0.1:{gateway.port}/event"
    assert gateway.outputs["eventsRealtimeEndpoint"].startswith("wss://127.0.0.1:")
    assert gateway.ca_file.is_file()
    assert not gateway.outputs["caCertFile"].startswith("/")  # relative to the repository


def test_one_port_answers_tls_and_plain_http(gateway):
    secure = request(gateway, "GET", tls_url(gateway, "/config.json"))
    plain = request(gateway, "GET", plain_url(gateway, "/config.json"))
    assert secure.status == plain.status == 200
    assert json.loads(secure.data)["userPoolId"] == json.loads(plain.data)["userPoolId"]


def test_a_client_that_does_not_trust_the_ca_is_refused(gateway):
    pool = urllib3.PoolManager(retries=False)  # the system's trust store only
    with pytest.raises(urllib3.exceptions.SSLError):
        pool.request("GET", tls_url(gateway, "/config.json"))


def test_config_json_names_the_tls_endpoints_and_a_same_origin_sign_in(gateway):
    config = json.loads(request(gateway, "GET", plain_url(gateway, "/config.json")).data)
    host = f"127.0.0.1:{gateway.port}"
    assert config["userPoolEndpoint"] == f"http://{host}/cognito-idp/"
    assert "caCertFile" not in config and "awsEndpointUrl" not in config


# --- hosts and origins ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/config.json", "/"])
def test_a_foreign_host_header_is_refused(gateway, path):
    response = request(
        gateway, "GET", plain_url(gateway, path), headers={"Host": f"evil.example:{gateway.port}"}
    )
    assert response.status == 421


def test_a_publish_from_a_foreign_origin_is_refused_and_gets_no_cors(gateway):
    preflight = request(
        gateway,
        "OPTIONS",
        tls_url(gateway, "/event"),
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_the_ui_origin_gets_cors_on_publish(gateway):
    origin = f"http://localhost:{gateway.port}"
    preflight = request(
        gateway,
        "OPTIONS",
        tls_url(gateway, "/event"),
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == origin


def test_a_websocket_from_a_foreign_origin_is_refused(gateway):
    async def scenario():
        async with websockets.connect(
            gateway.outputs["eventsRealtimeEndpoint"],
            subprotocols=["aws-appsync-event-ws"],
            origin="http://evil.example",
            ssl=gateway.ssl_context(),
        ):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        run(scenario())
    assert refused.value.response.status_code == 403


def test_allowed_origins_are_configurable():
    policy = AccessPolicy(8080, ["devbox.lan"], ["http://localhost:5173"])
    assert policy.origin_allowed("http://localhost:5173")
    assert policy.origin_allowed("https://devbox.lan:8080")
    assert policy.origin_allowed(None)  # not a browser page
    assert not policy.origin_allowed("http://localhost:3000")
    assert AccessPolicy(8080, [], ["loopback"]).origin_allowed("http://127.0.0.1:3000")
    assert not AccessPolicy(8080, [], ["loopback"]).origin_allowed("http://evil.example")
    assert policy.host_allowed("devbox.lan:8080") and policy.host_allowed("[::1]:8080")
    assert not policy.host_allowed("localhost:9999") and not policy.host_allowed(None)


# --- limits and bad JSON ----------------------------------------------------------------------


def test_a_connection_holds_at_most_the_appsync_subscription_quota(gateway):
    tokens = gateway.sign_in("free")
    channel = outbound(gateway, tokens["sub"])

    async def scenario():
        async with connect(gateway, tokens["access"]) as client:
            answers = [await client.subscribe(channel, f"s{n}") for n in range(101)]
            await client.send({"type": "unsubscribe", "id": "s0"})
            await client.recv_type("unsubscribe_success")
            again = await client.subscribe(channel, "again")
            return answers, again

    answers, again = run(scenario())
    assert MAX_SUBSCRIPTIONS_PER_CONNECTION == 100
    assert {a["type"] for a in answers[:100]} == {"subscribe_success"}
    assert answers[100]["type"] == "subscribe_error"
    assert answers[100]["errors"][0]["errorType"] == "BadRequestException"
    assert again["type"] == "subscribe_success"


def test_an_over_deep_frame_gets_an_error_and_the_socket_stays_usable(gateway):
    tokens = gateway.sign_in("free")

    async def scenario():
        async with connect(gateway, tokens["access"]) as client:
            await client.send("[" * 50_000 + "]" * 50_000)
            error = await client.recv_type("error")
            still = await client.subscribe(outbound(gateway, tokens["sub"]))
            return error, still

    error, still = run(scenario())
    assert error["errors"][0]["errorType"] == "BadRequestException"
    assert still["type"] == "subscribe_success"


def test_an_over_deep_http_publish_is_a_bad_request(gateway):
    body = ("[" * 50_000 + "]" * 50_000).encode()
    response = request(
        gateway,
        "POST",
        tls_url(gateway, "/event"),
        body=body,
        headers={"content-type": "application/json"},
    )
    assert response.status == 400
    assert json.loads(response.data)["errors"][0]["errorType"] == "BadRequestException"


@pytest.mark.parametrize("path", ["/replies/abc\n", "/replies\n/abc", "/replies/abc\r"])
def test_a_segment_with_a_trailing_newline_is_not_a_channel(path):
    with pytest.raises(InvalidChannel):
        parse_channel(path, allow_wildcard=False)
