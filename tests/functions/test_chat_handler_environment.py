"""``chat.handler`` as deployed: everything built from the environment — tier config from SSM
through Powertools parameters, DynamoDB, the local model, SigV4 publishing, Firehose, EMF."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import chat
import pytest
from gateway.publisher import publish_stats

from tests.functions.support import (
    INBOUND,
    OUTBOUND,
    SUB,
    TIER_DOCUMENT,
    RecordingEndpoint,
    chat_payload,
    create_tables,
    publish_event,
)
from tests.support.appsync import lambda_context


@pytest.fixture
def deployed(
    aws: None, endpoint: RecordingEndpoint, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """A function environment like the one the program gives the chat function (unique names,
    so this test gets its own warm runtime)."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "usage": f"usage-{suffix}",
        "prepared": f"prepared-{suffix}",
        "parameter": f"/ai-gateway/test/{suffix}/tiers",
        "stream": f"turns-{suffix}",
        "bucket": f"analytics-{suffix}",
    }
    create_tables(boto3.client("dynamodb"), names["usage"], names["prepared"])
    boto3.client("ssm").put_parameter(
        Name=names["parameter"], Type="String", Value=json.dumps(TIER_DOCUMENT)
    )
    boto3.client("s3").create_bucket(Bucket=names["bucket"])
    boto3.client("firehose").create_delivery_stream(
        DeliveryStreamName=names["stream"],
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{names['bucket']}",
        },
    )
    environment = {
        "USAGE_TABLE": names["usage"],
        "PREPARED_RESPONSES_TABLE": names["prepared"],
        "TIER_CONFIG_PARAMETER": names["parameter"],
        "TIER_CONFIG_CACHE_SECONDS": "30",
        "EVENTS_HTTP_ENDPOINT": endpoint.url,
        "INBOUND_NAMESPACE": INBOUND,
        "OUTBOUND_NAMESPACE": OUTBOUND,
        "ANALYTICS_STREAM": names["stream"],
        "STREAM_FLUSH_MS": "200",
        "MODEL_PROVIDER": "local",
        "LOCAL_MODEL_TOKENS_PER_SECOND": "0",
        "MESSAGE_PREVIEW_CHARS": "5",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    yield names


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the chat function's Powertools logger writes."""
    lines = io.StringIO()
    previous = chat.logger.registered_handler.setStream(lines)
    try:
        yield lines
    finally:
        chat.logger.registered_handler.setStream(previous)


def test_a_local_model_turn_through_the_deployed_handler(deployed, endpoint, log_lines):
    # GIVEN a warm-up turn, so the measured turn runs on a warm function
    chat.handler(publish_event(chat_payload("warm up [tokens=4]", turnId="t-0")), lambda_context())
    before = publish_stats()
    endpoint.publishes.clear()

    # WHEN a free-tier user asks for a 512-token answer from the local model at full speed
    chat.handler(publish_event(chat_payload("Write me a long answer")), lambda_context("req-2"))

    # THEN the answer arrives in a handful of coalesced events on one reused connection
    events = endpoint.events(f"/{OUTBOUND}/{SUB}")
    done = events[-1]
    assert done["type"] == "done" and done["provider"] == "local"
    assert done["usage"]["outputTokens"] == 512
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert len(events) <= 8
    after = publish_stats()
    assert after.events_published - before.events_published == len(events)
    assert after.connections_opened == before.connections_opened
    assert endpoint.connections == 1

    # AND its usage is in the user's item, its analytics record in the stream's bucket
    item = boto3.client("dynamodb").get_item(
        TableName=deployed["usage"], Key={"pk": {"S": f"user#{SUB}"}}
    )["Item"]
    assert sum(int(v["N"]) for k, v in item.items() if k.startswith("m#") and k.endswith("#o")) == (
        4 + 512
    )
    s3 = boto3.client("s3")
    records = [
        json.loads(line)
        for obj in s3.list_objects_v2(Bucket=deployed["bucket"])["Contents"]
        for line in s3.get_object(Bucket=deployed["bucket"], Key=obj["Key"])["Body"]
        .read()
        .decode()
        .splitlines()
    ]
    by_turn = {r["turn_id"]: r for r in records}
    assert sorted(by_turn) == ["t-0", "t-1"] and len(records) == 2
    assert by_turn["t-1"]["output_tokens"] == 512
    assert by_turn["t-1"]["events_published"] == len(events)

    # AND the logs carry the correlation id and at most the allowed prompt preview
    logs = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    finished = [log for log in logs if log.get("message") == "turn finished"]
    assert finished[-1]["correlation_id"] == "req-2"
    assert finished[-1]["prompt_preview"] == "Write"


def test_a_refused_publish_reaches_only_the_callers_own_channel(deployed, endpoint):
    other = "9d9d9d9d-3333-4c4c-8e8e-000000000003"
    chat.handler(publish_event(chat_payload(), path=f"/{INBOUND}/{other}"), lambda_context())
    assert {p.channel for p in endpoint.publishes} == {f"/{OUTBOUND}/{SUB}"}
    assert [e["code"] for e in endpoint.events()] == ["unauthorized"]
