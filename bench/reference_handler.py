"""The reference design's chat handler, rebuilt from DESIGN §6 and §10 as the benchmark baseline.

The reference is not in this repository; this is a faithful model of what the design brief says
it does, so its figures can be measured on the same machine as the gateway's:

- AWS clients built at import time (a boto3 DynamoDB resource and four clients), as a typical
  Lambda does "outside the handler", with the same Powertools Logger and Tracer the gateway's chat
  module uses (``REF_WITHOUT_TRACER=1`` measures it without the Tracer);
- the tier config fetched from SSM on every turn (no cache);
- a prepared-response lookup on every turn;
- usage read with a range query over the 144 ten-minute buckets of the trailing day, a month
  total read, and a scan of live reservations, then a non-atomic check and a reservation put;
- every raw ConverseStream event (messageStart, 512 deltas, contentBlockStop, messageStop,
  metadata: 516 for a 512-token answer) published as it arrives, each on a new connection;
- settlement as two UpdateItems and a DeleteItem, two blocking PutMetricData calls, one Firehose
  record and a turn record: 13 AWS requests besides the publishes and the model call.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from boto3.dynamodb.conditions import Attr, Key

from bench.reference_relay import ReferenceRelay

logger = Logger(service="reference-chat")

if os.environ.get("REF_WITHOUT_TRACER") == "1":  # the cold-import variant without X-Ray
    capture_lambda_handler = lambda handler: handler  # noqa: E731
else:
    from aws_lambda_powertools import Tracer

    capture_lambda_handler = Tracer(service="reference-chat").capture_lambda_handler

dynamodb = boto3.resource("dynamodb")
bedrock = boto3.client("bedrock-runtime")
cloudwatch = boto3.client("cloudwatch")
firehose = boto3.client("firehose")
ssm = boto3.client("ssm")

USAGE_TABLE = dynamodb.Table(os.environ.get("REF_USAGE_TABLE", "ref-usage"))
RESERVATIONS_TABLE = dynamodb.Table(os.environ.get("REF_RESERVATIONS_TABLE", "ref-reservations"))
PREPARED_TABLE = dynamodb.Table(os.environ.get("REF_PREPARED_TABLE", "ref-prepared"))
TURNS_TABLE = dynamodb.Table(os.environ.get("REF_TURNS_TABLE", "ref-turns"))
TIER_PARAMETER = os.environ.get("REF_TIER_CONFIG_PARAMETER", "/ref/tiers")
STREAM = os.environ.get("REF_ANALYTICS_STREAM", "ref-analytics")

BUCKET_SECONDS = 600
DAY_BUCKETS = 144

ModelStream = Callable[[str, list[dict[str, Any]], int], Iterable[dict[str, Any]]]


def bedrock_stream(model_id: str, messages: list[dict[str, Any]], max_tokens: int):
    answer = bedrock.converse_stream(
        modelId=model_id, messages=messages, inferenceConfig={"maxTokens": max_tokens}
    )
    return answer["stream"]


@capture_lambda_handler
def handler(event: dict[str, Any], context: Any, *, model_stream: ModelStream = bedrock_stream):
    relay = ReferenceRelay(os.environ["EVENTS_HTTP_ENDPOINT"])
    sub = event["identity"]["sub"]
    for inbound in event.get("events", []):
        _turn(sub, inbound["payload"], relay, model_stream)
    return {"events": []}


def _turn(sub: str, payload: dict[str, Any], relay: ReferenceRelay, model_stream: ModelStream):
    started = time.time()
    channel = f"/replies/{sub}"
    tiers = json.loads(ssm.get_parameter(Name=TIER_PARAMETER)["Parameter"]["Value"])
    tier = tiers["tiers"][tiers["defaultTier"]]
    model_id = payload.get("modelId") or tier["defaultModel"]
    messages = payload["messages"]
    prompt = json.dumps(messages[-1]["content"], sort_keys=True)
    PREPARED_TABLE.get_item(Key={"pk": hashlib.sha256(prompt.encode()).hexdigest()})

    now = dt.datetime.now(dt.UTC)
    bucket = int(now.timestamp()) // BUCKET_SECONDS
    daily = USAGE_TABLE.query(
        KeyConditionExpression=Key("pk").eq(f"{sub}#daily")
        & Key("sk").between(f"{bucket - DAY_BUCKETS + 1:012d}", f"{bucket:012d}")
    )["Items"]
    monthly = USAGE_TABLE.get_item(Key={"pk": f"{sub}#monthly", "sk": now.strftime("%Y-%m")})
    reservations = RESERVATIONS_TABLE.scan(FilterExpression=Attr("user").eq(sub))["Items"]
    used_out = sum(int(i.get("outputTokens", 0)) for i in daily)
    used_out += sum(int(r.get("tokens", 0)) for r in reservations)
    month_out = int(monthly.get("Item", {}).get("outputTokens", 0))
    if used_out >= tier["dailyOutputTokens"] or month_out >= tier["monthlyOutputTokens"]:
        relay.publish(channel, {"type": "error", "code": "limit_exceeded"})
        return
    reservation = str(uuid.uuid4())
    max_tokens = tier["maxOutputTokensPerTurn"]
    RESERVATIONS_TABLE.put_item(Item={"id": reservation, "user": sub, "tokens": max_tokens})

    usage = {"inputTokens": 0, "outputTokens": 0}
    for stream_event in model_stream(model_id, messages, max_tokens):
        relay.publish(channel, stream_event)
        if "metadata" in stream_event:
            usage = stream_event["metadata"]["usage"]

    USAGE_TABLE.update_item(
        Key={"pk": f"{sub}#daily", "sk": f"{bucket:012d}"},
        UpdateExpression="ADD inputTokens :i, outputTokens :o",
        ExpressionAttributeValues={":i": usage["inputTokens"], ":o": usage["outputTokens"]},
    )
    USAGE_TABLE.update_item(
        Key={"pk": f"{sub}#monthly", "sk": now.strftime("%Y-%m")},
        UpdateExpression="ADD inputTokens :i, outputTokens :o",
        ExpressionAttributeValues={":i": usage["inputTokens"], ":o": usage["outputTokens"]},
    )
    RESERVATIONS_TABLE.delete_item(Key={"id": reservation})
    latency_ms = (time.time() - started) * 1000
    dimensions = [{"Name": "ModelId", "Value": model_id}]
    cloudwatch.put_metric_data(
        Namespace="ReferenceGateway",
        MetricData=[
            {"MetricName": "InputTokens", "Value": usage["inputTokens"], "Dimensions": dimensions},
            {
                "MetricName": "OutputTokens",
                "Value": usage["outputTokens"],
                "Dimensions": dimensions,
            },
        ],
    )
    cloudwatch.put_metric_data(
        Namespace="ReferenceGateway",
        MetricData=[{"MetricName": "Latency", "Value": latency_ms, "Unit": "Milliseconds"}],
    )
    record = {
        "ts": now.isoformat(),
        "user": sub,
        "modelId": model_id,
        "conversationId": payload.get("conversationId"),
        "inputTokens": usage["inputTokens"],
        "outputTokens": usage["outputTokens"],
        "latencyMs": round(latency_ms),
    }
    firehose.put_record(DeliveryStreamName=STREAM, Record={"Data": json.dumps(record) + "\n"})
    TURNS_TABLE.put_item(Item={"pk": f"{sub}#{payload.get('conversationId')}", **record})
    logger.info("turn complete", extra=record)
