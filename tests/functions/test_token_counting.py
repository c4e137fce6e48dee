"""Exact counts where the provider can give them: a turn whose input bound does not fit what is
left is reserved at the model's own count (Bedrock's CountTokens), and a stopped turn is charged
what it produced, counted exactly (the local model) or estimated (elsewhere)."""

from __future__ import annotations

from typing import Any

import boto3
import chat
import pytest
from botocore.stub import Stubber
from gateway.counting import BedrockTokenCounter, LocalTokenCounter
from gateway.environment import FunctionEnvironment
from gateway.model import ModelRequest
from gateway.providers import LocalModel
from gateway.publisher import EventsHttpPublisher
from gateway.runtime import Runtime
from gateway.telemetry import NoAnalytics
from gateway.tiers import TierConfig
from gateway.usage_store import DynamoTurnStore

from tests.functions.support import (
    INBOUND,
    OUTBOUND,
    SUB,
    RecordingEndpoint,
    StaticTiers,
    chat_payload,
    create_tables,
    publish_event,
    tier_config,
)
from tests.support.appsync import lambda_context

OWN_CHANNEL = f"/{OUTBOUND}/{SUB}"
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


class FakeCounter:
    """Counts a request as one token per word, and records every call (as CountTokens would
    be called)."""

    def __init__(self, counts: bool = True) -> None:
        self.counts = counts
        self.calls: list[str] = []

    def input_tokens(self, request: ModelRequest) -> int | None:
        self.calls.append("input")
        words = sum(len(t.split()) for t in request.texts())
        return words + 40 if self.counts else None

    def output_tokens(self, model_id: str, text: str) -> int | None:
        self.calls.append("output")
        return None


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_tables(client)
    return client


def run_turn(dynamodb: Any, endpoint: RecordingEndpoint, counter: Any, text: str) -> dict:
    env = FunctionEnvironment(
        usage_table="usage",
        prepared_responses_table="prepared",
        events_http_endpoint=endpoint.url,
        inbound_namespace=INBOUND,
        outbound_namespace=OUTBOUND,
        stream_flush_ms=20,
    )
    runtime = Runtime(
        env,
        tiers=StaticTiers(tier_config(dailyInputTokens=2000)),
        store=DynamoTurnStore(lambda: dynamodb, "usage", "prepared"),
        provider=LocalModel(),
        publisher=EventsHttpPublisher(endpoint.url, region="us-east-1", credentials=lambda: None),
        analytics=NoAnalytics(),
        counter=counter,
    )
    chat.make_handler(runtime)(publish_event(chat_payload(text)), lambda_context())
    return endpoint.events(OWN_CHANNEL)[-1]


def test_a_turn_whose_bound_fits_never_asks_for_a_count(dynamodb, endpoint):
    counter = FakeCounter()
    done = run_turn(dynamodb, endpoint, counter, "A short question [tokens=5]")
    assert done["type"] == "done"
    assert counter.calls == []  # the normal path adds no request


def test_a_turn_whose_bound_does_not_fit_is_reserved_at_the_exact_count(dynamodb, endpoint):
    # 2,500 ASCII characters bound to over 2,000 tokens, the whole daily allowance; counted,
    # the message is 500 words
    text = "word " * 499 + "[tokens=5]"
    refused = run_turn(dynamodb, endpoint, FakeCounter(counts=False), text)
    assert refused["code"] == "turn_too_large"
    counter = FakeCounter()
    done = run_turn(dynamodb, endpoint, counter, text)
    assert done["type"] == "done", done
    assert counter.calls == ["input"]  # once, though admission may decide more than once


def test_bedrock_counts_only_models_the_catalog_marks_countable_by_their_foundation_model():
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    config = tier_config()
    tiers = StaticTiers(TierConfig(config.default_tier, config.tiers, {}, frozenset({HAIKU})))
    counter = BedrockTokenCounter(lambda: client, tiers, _Log())
    request = ModelRequest(HAIKU, ({"role": "user", "content": [{"text": "Hi"}]},), 10)
    with Stubber(client) as stub:
        stub.add_response(
            "count_tokens",
            {"inputTokens": 9},
            {
                "modelId": "anthropic.claude-haiku-4-5-20251001-v1:0",
                "input": {"converse": {"messages": list(request.messages)}},
            },
        )
        assert counter.input_tokens(request) == 9
        # Nova is not countable: no request at all
        nova = ModelRequest("amazon.nova-micro-v1:0", request.messages, 10)
        assert counter.input_tokens(nova) is None
        stub.add_client_error("count_tokens", "ValidationException")
        assert counter.output_tokens(HAIKU, "some text") is None  # a failure keeps the estimate
        stub.assert_no_pending_responses()


def test_the_local_counter_counts_what_the_local_model_produced_exactly():
    from itertools import islice

    from gateway.providers import local_reply

    pieces = list(islice(local_reply("What is a token? [tokens=40]"), 40))
    counter = LocalTokenCounter(StaticTiers())
    for produced in (1, 4, 9, 40):
        assert counter.output_tokens("m", "".join(pieces[:produced])) == produced


def test_the_local_counter_counts_input_only_where_bedrock_could():
    config = tier_config()
    nova = ModelRequest(
        "amazon.nova-micro-v1:0", ({"role": "user", "content": [{"text": "Hi"}]},), 9
    )
    assert LocalTokenCounter(StaticTiers(config)).input_tokens(nova) is None
    countable = TierConfig(config.default_tier, config.tiers, {}, frozenset({nova.model_id}))
    assert LocalTokenCounter(StaticTiers(countable)).input_tokens(nova) == 4


class _Log:
    def info(self, *a: Any, **k: Any) -> None: ...

    def warning(self, *a: Any, **k: Any) -> None: ...

    def error(self, *a: Any, **k: Any) -> None: ...

    def exception(self, *a: Any, **k: Any) -> None: ...
