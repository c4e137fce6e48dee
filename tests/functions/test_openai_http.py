"""The door's HTTP server as the Lambda Web Adapter reaches it, on a real turn core (moto for the
usage table, a scripted model): readiness, routing, the caller from API Gateway's request context
(users and machine clients), answers streamed and whole, and refusals in OpenAI's envelope, each
recorded with the ``openai`` door and none charged."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import openai_http
import pytest
from gateway.environment import FunctionEnvironment
from gateway.openai.wire import WireLimits
from gateway.runtime import Runtime
from gateway.usage_store import DynamoTurnStore

from tests.functions.support import SUB, ScriptedModel, StaticTiers, create_tables


def context(claims: dict[str, Any]) -> str:
    return json.dumps({"requestId": "req-1", "authorizer": {"claims": claims}})


USER = context({"sub": SUB, "username": "someone", "client_id": "web", "cognito:groups": "free"})
MACHINE = context({"sub": "machine1client", "client_id": "machine1client"})


class Records:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def record(self, record: Any) -> None:
        self.records.append(record)


class Server:
    def __init__(self, port: int, model: ScriptedModel, records: Records, dynamodb: Any) -> None:
        self.port = port
        self.model = model
        self.records = records
        self.dynamodb = dynamodb

    def call(self, method: str, path: str, body: bytes | None = None, ctx: str | None = USER):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "application/json"}
        if ctx is not None:
            headers[openai_http.REQUEST_CONTEXT_HEADER] = ctx
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    def charged(self, sub: str = SUB) -> dict[str, Any]:
        item = self.dynamodb.get_item(
            TableName="usage", Key={"pk": {"S": f"user#{sub}"}}, ConsistentRead=True
        ).get("Item")
        return {k: v for k, v in (item or {}).items() if k[:2] in ("d#", "m#", "r#")}


@pytest.fixture
def server(aws: None) -> Iterator[Server]:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    create_tables(dynamodb)
    model, records = ScriptedModel(), Records()
    runtime = Runtime(
        FunctionEnvironment(usage_table="usage", prepared_responses_table="prepared"),
        tiers=StaticTiers(),
        store=DynamoTurnStore(lambda: dynamodb, "usage", "prepared"),
        provider=model,
        analytics=records,
    )
    door = runtime.openai_door({"machine1client": "pro"})
    httpd = openai_http.serve(door, WireLimits(max_messages=4, max_message_chars=100), port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(httpd.server_address[1], model, records, dynamodb)
    finally:
        httpd.shutdown()
        httpd.server_close()


def chat_body(**fields: Any) -> bytes:
    document = {
        "model": "amazon.nova-micro-v1:0",
        "messages": [{"role": "user", "content": "Hi"}],
        **fields,
    }
    return json.dumps(document).encode()


def test_the_readiness_check_answers(server):
    status, _, body = server.call("GET", "/healthz", ctx=None)
    assert (status, body) == (200, b"ok")


def test_a_request_without_an_authorised_caller_is_a_401_and_runs_nothing(server):
    status, _, body = server.call("POST", "/v1/chat/completions", chat_body(), ctx=None)
    assert status == 401
    assert json.loads(body)["error"]["code"] == "unauthorized"
    assert server.model.requests == []


def test_a_non_streamed_answer_is_one_chat_completion_and_is_recorded_as_the_openai_door(server):
    status, headers, body = server.call("POST", "/api/v1/chat/completions", chat_body())
    assert status == 200
    answer = json.loads(body)
    assert answer["choices"][0]["message"]["content"] == "Hello, world!"
    assert answer["usage"] == {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    (record,) = server.records.records
    assert (record.door, record.outcome, record.user_id) == ("openai", "done", SUB)
    assert server.charged()


def test_a_streamed_answer_is_server_sent_events_ending_with_usage_and_done(server):
    body = chat_body(stream=True, stream_options={"include_usage": True}, max_tokens=7)
    status, headers, raw = server.call("POST", "/v1/chat/completions", body)
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = [line.removeprefix("data: ") for line in raw.decode().split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == (
        "Hello, world!"
    )
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    # the client's max_tokens reached the model and bounded the reservation
    assert server.model.requests[0].max_tokens == 7
    assert server.model.requests[0].messages == ({"role": "user", "content": [{"text": "Hi"}]},)


def test_a_machine_client_is_metered_as_itself_at_its_tier(server):
    body = chat_body(model="amazon.nova-pro-v1:0")  # a pro model: the machine client's tier
    status, _, _ = server.call("POST", "/v1/chat/completions", body, ctx=MACHINE)
    assert status == 200
    assert server.records.records[-1].user_id == "machine1client"
    assert server.records.records[-1].tier == "pro"
    assert server.charged("machine1client")


def test_a_client_credentials_token_of_an_unmapped_client_is_a_401(server):
    stranger = context({"sub": "otherclient", "client_id": "otherclient"})
    status, _, _ = server.call("POST", "/v1/chat/completions", chat_body(), ctx=stranger)
    assert status == 401


def test_a_model_outside_the_tier_is_a_403_before_any_model_call(server):
    status, _, body = server.call(
        "POST", "/v1/chat/completions", chat_body(model="amazon.nova-pro-v1:0")
    )
    assert status == 403
    assert json.loads(body)["error"]["code"] == "model_not_allowed"
    assert server.model.requests == []
    assert server.charged() == {}


def test_a_bad_body_is_a_400_naming_the_param_counted_and_recorded_but_not_charged(server):
    status, _, body = server.call("POST", "/v1/chat/completions", chat_body(n=2))
    assert status == 400
    assert json.loads(body)["error"]["param"] == "n"
    assert server.model.requests == []
    (record,) = server.records.records
    assert (record.door, record.error_code) == ("openai", "invalid_request")
    assert server.charged() == {}


def test_a_body_over_the_cap_is_refused_unread(server):
    status, headers, body = server.call("POST", "/v1/chat/completions", b"x" * 200_000)
    assert status == 400
    assert headers["Connection"] == "close"
    assert server.model.requests == []


def test_models_lists_the_callers_tier(server):
    status, _, body = server.call("GET", "/v1/models")
    assert status == 200
    assert [m["id"] for m in json.loads(body)["data"]] == [
        "amazon.nova-micro-v1:0",
        "amazon.nova-lite-v1:0",
    ]
    assert server.call("GET", "/v1/models", ctx=None)[0] == 401


def test_unknown_paths_are_404s(server):
    status, _, body = server.call("GET", "/v1/embeddings")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "unknown_url"
