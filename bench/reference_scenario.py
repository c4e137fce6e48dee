"""The reference design's turn on the benchmark stage: its tables, parameter and stream in moto,
a user with usage in every bucket of the trailing day, and one measured turn."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from bench.harness import Stage, TurnMeasurement, measure_turn
from bench.model_stream import ModelStopwatch, converse_stream

USER_SUB = "0f7e2d4c-5b1a-4c3e-9d8f-7a6b5c4d3e2f"
OTHER_LIVE_RESERVATIONS = 50  # other users' turns in flight, which the reference's scan reads

TIERS = {
    "defaultTier": "free",
    "tiers": {
        "free": {
            "models": ["amazon.nova-micro-v1:0"],
            "defaultModel": "amazon.nova-micro-v1:0",
            "dailyInputTokens": 10_000_000,
            "dailyOutputTokens": 10_000_000,
            "monthlyInputTokens": 100_000_000,
            "monthlyOutputTokens": 100_000_000,
            "maxOutputTokensPerTurn": 512,
            "cache": True,
        }
    },
}


def create_reference_resources(stage: Stage) -> None:
    """What the reference design's stack holds, in moto, with a realistic steady state."""
    stage.set_env(
        REF_USAGE_TABLE="ref-usage",
        REF_RESERVATIONS_TABLE="ref-reservations",
        REF_PREPARED_TABLE="ref-prepared",
        REF_TURNS_TABLE="ref-turns",
        REF_TIER_CONFIG_PARAMETER="/ref/tiers",
        REF_ANALYTICS_STREAM="ref-analytics",
    )
    ddb = boto3.client("dynamodb")
    for name, keys in (
        ("ref-usage", ("pk", "sk")),
        ("ref-reservations", ("id",)),
        ("ref-prepared", ("pk",)),
        ("ref-turns", ("pk",)),
    ):
        ddb.create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": k, "KeyType": "HASH" if i == 0 else "RANGE"}
                for i, k in enumerate(keys)
            ],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    boto3.client("ssm").put_parameter(
        Name="/ref/tiers", Value=json.dumps(TIERS), Type="String", Overwrite=True
    )
    boto3.client("s3").create_bucket(Bucket="ref-analytics-bucket")
    boto3.client("firehose").create_delivery_stream(
        DeliveryStreamName="ref-analytics",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/ref-analytics",
            "BucketARN": "arn:aws:s3:::ref-analytics-bucket",
        },
    )
    # A user who has chatted in every 10-minute bucket of the last day, and other users' turns
    # in flight: the range query reads 144 items and the scan reads every live reservation.
    bucket = int(time.time()) // 600
    with boto3.resource("dynamodb").Table("ref-usage").batch_writer() as batch:
        for b in range(bucket - 143, bucket + 1):
            batch.put_item(
                Item={
                    "pk": f"{USER_SUB}#daily",
                    "sk": f"{b:012d}",
                    "inputTokens": 40,
                    "outputTokens": 300,
                }
            )
    with boto3.resource("dynamodb").Table("ref-reservations").batch_writer() as batch:
        for i in range(OTHER_LIVE_RESERVATIONS):
            batch.put_item(Item={"id": f"other-{i:04d}", "user": f"user-{i:04d}", "tokens": 512})


def reference_event(text: str = "Hello") -> dict[str, Any]:
    return {
        "identity": {"sub": USER_SUB, "username": "bench"},
        "info": {
            "channel": {"path": f"/chat/{USER_SUB}", "segments": ["chat", USER_SUB]},
            "channelNamespace": {"name": "chat"},
            "operation": "PUBLISH",
        },
        "events": [
            {
                "id": "1",
                "payload": {
                    "conversationId": "c-bench",
                    "messages": [{"role": "user", "content": [{"text": text}]}],
                },
            }
        ],
    }


def is_reference_delta(payload: Any) -> bool:
    return isinstance(payload, dict) and "contentBlockDelta" in payload


def run_reference_turn(
    stage: Stage, pace: str, tokens_per_second: float | None, tokens: int = 512
) -> TurnMeasurement:
    from bench import reference_handler

    stopwatch = ModelStopwatch(is_token=lambda item: "contentBlockDelta" in item)

    def model(model_id: str, messages: list, max_tokens: int):
        return stopwatch.wrap(converse_stream(min(tokens, max_tokens), tokens_per_second))

    def run() -> str:
        reference_handler.handler(reference_event(), None, model_stream=model)
        return "done"

    return measure_turn("reference", pace, stage, run, stopwatch, is_reference_delta)
