"""The OpenAI-compatible API through ``python -m local`` (what ``make dev`` runs), driven by the
real ``openai`` Python SDK and LangChain's ``ChatOpenAI``, as an application would use them:
only the base URL, the access token and the local CA change.

The gateway runs tests/local/openai-stack.yaml: tier ``chat`` has room everywhere, ``tiny`` a
12-token daily output window, ``slow`` three requests a minute. Usage is read back through the
Event API's usage request, so the same reads also show that both doors share one usage item.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx2
import openai
import pytest
from gateway.schema import PARTITION_KEY, usage_key

from tests.local.gateway_harness import Gateway, connect, start_gateway

pytestmark = pytest.mark.slow

STACK_FILE = Path(__file__).with_name("openai-stack.yaml")
MICRO = "amazon.nova-micro-v1:0"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(
        tmp_path_factory.mktemp("openai"),
        "--config-file",
        str(STACK_FILE),
        "--tokens-per-second",
        "50",
    )
    try:
        yield running
    finally:
        running.stop()


def client(gateway: Gateway, token: str, **options: Any) -> openai.OpenAI:
    """The SDK as docs/openai.md sets it up for make dev: the base URL from the outputs, the
    access token as the API key, the local CA trusted through the HTTP client's ``verify``."""
    return openai.OpenAI(
        base_url=gateway.outputs["openAiBaseUrl"],
        api_key=token,
        http_client=httpx2.Client(verify=str(gateway.ca_file)),
        max_retries=0,
        **options,
    )


def used(gateway: Gateway, tier: str) -> dict[str, int]:
    """The tier's demo user's ``used`` per window, from the Event API's usage request."""
    tokens = gateway.sign_in(tier)
    ns_in = gateway.outputs["inboundNamespace"]
    ns_out = gateway.outputs["outboundNamespace"]

    async def ask() -> dict[str, Any]:
        async with connect(gateway, tokens["access"]) as events:
            await events.subscribe(f"/{ns_out}/{tokens['sub']}")
            await events.publish(f"/{ns_in}/{tokens['sub']}", [json.dumps({"action": "usage"})])
            message = await events.recv_type("data", timeout=20)
            return json.loads(message["event"])

    answer = asyncio.run(ask())
    assert answer["type"] == "usage", answer
    return {window: view["used"] for window, view in answer["limits"].items()}


def test_make_dev_names_the_base_url_in_its_outputs(gateway):
    assert gateway.outputs["openAiBaseUrl"] == f"https://{gateway.host}/v1"


def test_models_lists_the_callers_tier(gateway):
    sdk = client(gateway, gateway.sign_in("chat")["access"])
    assert [m.id for m in sdk.models.list()] == [MICRO, "amazon.nova-lite-v1:0"]
    tiny = client(gateway, gateway.sign_in("tiny")["access"])
    assert [m.id for m in tiny.models.list()] == [MICRO]


def test_a_completion_answers_and_is_charged_what_it_reports(gateway):
    before = used(gateway, "chat")
    sdk = client(gateway, gateway.sign_in("chat")["access"])
    answer = sdk.chat.completions.create(
        model=MICRO, messages=[{"role": "user", "content": "Hello [tokens=5]"}]
    )
    assert answer.object == "chat.completion"
    assert answer.choices[0].finish_reason == "stop"
    assert len(answer.choices[0].message.content.split()) == 5
    assert answer.usage.completion_tokens == 5
    after = used(gateway, "chat")
    assert after["dailyOutputTokens"] - before["dailyOutputTokens"] == 5
    assert after["dailyInputTokens"] - before["dailyInputTokens"] == answer.usage.prompt_tokens


def test_a_streamed_completion_ends_with_its_usage(gateway):
    sdk = client(gateway, gateway.sign_in("chat")["access"])
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Stream it [tokens=6]"},
    ]
    chunks = list(
        sdk.chat.completions.create(
            model=MICRO, messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 6
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert all(c.usage is None for c in chunks[:-1])
    whole = sdk.chat.completions.create(model=MICRO, messages=messages)
    assert whole.choices[0].message.content == text


def test_max_tokens_caps_the_answer(gateway):
    sdk = client(gateway, gateway.sign_in("chat")["access"])
    answer = sdk.chat.completions.create(
        model=MICRO, max_tokens=3, messages=[{"role": "user", "content": "Long [tokens=50]"}]
    )
    assert answer.usage.completion_tokens == 3
    assert answer.choices[0].finish_reason == "length"


def test_a_model_outside_the_tier_is_permission_denied(gateway):
    sdk = client(gateway, gateway.sign_in("tiny")["access"])
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk.chat.completions.create(
            model="amazon.nova-lite-v1:0", messages=[{"role": "user", "content": "Hi"}]
        )
    assert refused.value.status_code == 403
    assert refused.value.code == "model_not_allowed"


def _forged(token: str) -> str:
    """The token with another subject in its claims and its original signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def test_a_forged_token_an_id_token_and_no_token_are_unauthenticated(gateway):
    tokens = gateway.sign_in("chat")
    for token in (_forged(tokens["access"]), tokens["id"], "not-a-token"):
        sdk = client(gateway, token)
        with pytest.raises(openai.AuthenticationError) as refused:
            sdk.chat.completions.create(model=MICRO, messages=[{"role": "user", "content": "Hi"}])
        assert refused.value.code == "unauthorized"
        with pytest.raises(openai.AuthenticationError):
            sdk.models.list()


def test_the_request_rate_is_a_rate_limit_error_with_retry_after(gateway):
    sdk = client(gateway, gateway.sign_in("slow")["access"])
    for _ in range(3):
        sdk.chat.completions.create(
            model=MICRO, messages=[{"role": "user", "content": "Hi [tokens=1]"}]
        )
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.chat.completions.create(model=MICRO, messages=[{"role": "user", "content": "Hi"}])
    assert refused.value.code == "rate_limited"
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60


def test_a_used_up_window_is_a_rate_limit_error_until_it_resets(gateway):
    sdk = client(gateway, gateway.sign_in("tiny")["access"])
    first = sdk.chat.completions.create(
        model=MICRO, messages=[{"role": "user", "content": "Go [tokens=10]"}]
    )
    assert first.usage.completion_tokens == 10
    # Two tokens are left: the next answer is cut to them.
    second = sdk.chat.completions.create(
        model=MICRO, messages=[{"role": "user", "content": "Go [tokens=10]"}]
    )
    assert (second.usage.completion_tokens, second.choices[0].finish_reason) == (2, "length")
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.chat.completions.create(model=MICRO, messages=[{"role": "user", "content": "More"}])
    assert refused.value.code == "limit_exceeded"
    assert refused.value.body["type"] == "insufficient_quota"
    assert int(refused.value.response.headers["retry-after"]) >= 1


def test_a_client_that_leaves_mid_stream_is_charged_only_what_was_produced(gateway):
    before = used(gateway, "chat")
    sdk = client(gateway, gateway.sign_in("chat")["access"])
    stream = sdk.chat.completions.create(
        model=MICRO, messages=[{"role": "user", "content": "Long [tokens=400]"}], stream=True
    )
    received = 0
    for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received == 5:
            break
    stream.close()  # at 50 tokens a second the whole answer would take 8 s
    time.sleep(2.0)  # the turn notices at its next write, stops the model and settles
    charged = used(gateway, "chat")["dailyOutputTokens"] - before["dailyOutputTokens"]
    assert 5 <= charged < 400 // 2


def test_both_doors_draw_on_the_same_windows(gateway):
    tokens = gateway.sign_in("chat")
    ns_in = gateway.outputs["inboundNamespace"]
    ns_out = gateway.outputs["outboundNamespace"]
    start = used(gateway, "chat")["dailyOutputTokens"]
    client(gateway, tokens["access"]).chat.completions.create(
        model=MICRO, messages=[{"role": "user", "content": "Door one [tokens=7]"}]
    )
    after_openai = used(gateway, "chat")["dailyOutputTokens"]

    async def events_turn() -> list[dict[str, Any]]:
        async with connect(gateway, tokens["access"]) as events:
            await events.subscribe(f"/{ns_out}/{tokens['sub']}")
            payload = {
                "conversationId": "c-doors",
                "turnId": f"t-{uuid.uuid4().hex[:12]}",
                "messages": [{"role": "user", "content": [{"text": "Door two [tokens=4]"}]}],
            }
            await events.publish(f"/{ns_in}/{tokens['sub']}", [json.dumps(payload)])
            return await events.turn()

    assert asyncio.run(events_turn())[-1]["type"] == "done"
    after_events = used(gateway, "chat")["dailyOutputTokens"]
    assert (after_openai - start, after_events - after_openai) == (7, 4)


def test_langchain_chat_openai_works_unchanged(gateway):
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(
        model=MICRO,
        base_url=gateway.outputs["openAiBaseUrl"],
        api_key=gateway.sign_in("chat")["access"],
        http_client=httpx2.Client(verify=str(gateway.ca_file)),
        max_retries=0,
    )
    reply = model.invoke("Hello from LangChain [tokens=4]")
    assert len(str(reply.content).split()) == 4
    assert reply.usage_metadata["output_tokens"] == 4


# -- hostile input: one clear error each, nothing charged ---------------------------------------

_VALID = {"model": MICRO, "messages": [{"role": "user", "content": "Hi"}]}
BAD_BODIES: list[tuple[bytes, str | None]] = [
    (b"{not json", None),
    (b"", None),
    (b"[]", None),
    (b"\xff\xfe", None),
    (b"[" * 100_000 + b"]" * 100_000, None),  # over the size cap, never read
    (json.dumps({**_VALID, "n": 2}).encode(), "n"),
    (json.dumps({**_VALID, "tools": [{"type": "function"}]}).encode(), "tools"),
    (json.dumps({**_VALID, "logprobs": True}).encode(), "logprobs"),
    (json.dumps({**_VALID, "temperature": 1.5}).encode(), "temperature"),
    (json.dumps({**_VALID, "top_p": "high"}).encode(), "top_p"),
    (json.dumps({**_VALID, "max_tokens": 0}).encode(), "max_tokens"),
    (json.dumps({**_VALID, "stop": ["a", "b", "c", "d", "e"]}).encode(), "stop"),
    (json.dumps({**_VALID, "stream_options": {"include_usage": True}}).encode(), "stream_options"),
    (json.dumps({**_VALID, "surprise": 1}).encode(), "surprise"),
    (json.dumps({"messages": _VALID["messages"]}).encode(), "model"),
    (json.dumps({"model": MICRO}).encode(), "messages"),
    (json.dumps({"model": MICRO, "messages": []}).encode(), "messages"),
    (
        json.dumps(
            {
                "model": MICRO,
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ],
            }
        ).encode(),
        "messages[0].content[0].type",
    ),
    (
        json.dumps({"model": MICRO, "messages": [{"role": "tool", "content": "x"}]}).encode(),
        "messages[0].role",
    ),
    (
        json.dumps(
            {"model": MICRO, "messages": [{"role": "user", "content": "x" * 20_000}]}
        ).encode(),
        "messages",
    ),
]


def test_every_bad_request_gets_one_clear_400_and_nothing_is_charged(gateway):
    token = gateway.sign_in("chat")["access"]
    before = used(gateway, "chat")
    url = gateway.outputs["openAiBaseUrl"] + "/chat/completions"
    with httpx2.Client(verify=str(gateway.ca_file), timeout=30) as http:
        for body, param in BAD_BODIES:
            response = http.post(
                url,
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            assert response.status_code == 400, (body[:80], response.text)
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert (error["type"], error["code"], error["param"]) == (
                "invalid_request_error",
                "invalid_request",
                param,
            ), body[:80]
            assert error["message"]
    after = used(gateway, "chat")
    windows = ("dailyInputTokens", "dailyOutputTokens", "monthlyInputTokens", "monthlyOutputTokens")
    assert {w: after[w] for w in windows} == {w: before[w] for w in windows}


def machine_token(gateway: Gateway, **form: str) -> httpx2.Response:
    """A client-credentials token request to make dev's token endpoint, as docs/openai.md's curl
    sends it: the client's id and secret as HTTP Basic credentials."""
    machine = gateway.outputs["machineClients"]["reporting-bot"]
    auth = form.pop("auth", None) or (machine["clientId"], machine["clientSecret"])
    with httpx2.Client(verify=str(gateway.ca_file)) as http:
        return http.post(
            gateway.outputs["openAiTokenUrl"],
            auth=auth,
            data={"grant_type": "client_credentials", "scope": "ai-gateway/chat", **form},
        )


def test_a_machine_client_gets_a_token_and_is_metered_as_itself_at_its_tier(gateway):
    machine = gateway.outputs["machineClients"]["reporting-bot"]
    assert machine["tier"] == "tiny"
    answer = machine_token(gateway)
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    claims = json.loads(base64.urlsafe_b64decode(token["access_token"].split(".")[1] + "=="))
    assert claims["sub"] == claims["client_id"] == machine["clientId"]
    assert claims["token_use"] == "access" and claims["scope"] == "ai-gateway/chat"

    before = used(gateway, "tiny")
    sdk = client(gateway, token["access_token"])
    assert [m.id for m in sdk.models.list()] == [MICRO]  # tier tiny's models
    reply = sdk.chat.completions.create(
        model=MICRO, messages=[{"role": "user", "content": "Report [tokens=3]"}]
    )
    assert reply.usage.completion_tokens == 3
    with pytest.raises(openai.PermissionDeniedError):
        sdk.chat.completions.create(
            model="amazon.nova-lite-v1:0", messages=[{"role": "user", "content": "Hi"}]
        )
    # Charged to the client's own usage item, not to the tier's demo user.
    assert used(gateway, "tiny") == before
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=gateway.outputs["awsEndpointUrl"],
        region_name=gateway.outputs["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    tables = [t for t in dynamodb.list_tables()["TableNames"] if t.endswith("-usage")]
    item = dynamodb.get_item(
        TableName=tables[0], Key={PARTITION_KEY: {"S": usage_key(machine["clientId"])}}
    )
    assert "Item" in item


def test_the_token_endpoint_refuses_a_wrong_secret_scope_or_grant(gateway):
    machine = gateway.outputs["machineClients"]["reporting-bot"]
    wrong_secret = machine_token(gateway, auth=(machine["clientId"], "not-the-secret"))
    assert wrong_secret.status_code == 401
    assert wrong_secret.json() == {"error": "invalid_client"}
    unknown = machine_token(gateway, auth=("no-such-client", machine["clientSecret"]))
    assert unknown.json() == {"error": "invalid_client"}
    assert machine_token(gateway, scope="ai-gateway/admin").json() == {"error": "invalid_scope"}
    password = machine_token(gateway, grant_type="password")
    assert password.status_code == 400
    assert password.json() == {"error": "unsupported_grant_type"}
