"""The gateway's turn on the benchmark stage: the real chat handler, its real adapters (DynamoDB,
Firehose, SSM, EMF, the pooled SigV4 publisher) against moto and the publish sink, and the
deterministic local model — timed at the model port so model latency can be taken out."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3

from bench.harness import Stage, TurnMeasurement, measure_turn
from bench.model_stream import ModelStopwatch

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "functions") not in sys.path:
    sys.path.insert(0, str(REPO / "functions"))

from gateway.environment import FunctionEnvironment  # noqa: E402
from gateway.metering import VERSION, bucket_attribute, month_attribute  # noqa: E402
from gateway.providers import LocalModel, ModelRequest, TextDelta  # noqa: E402
from gateway.windows import DAILY_BUCKETS, bucket_start, month_key  # noqa: E402

BENCH_TIER = "pro"
USER_SUB = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


class TimedModel:
    """The local model behind a stopwatch: the model port, unchanged, with its time measured.
    ``pace`` sets the model's tokens per second for the next turns (0: full speed)."""

    name = "local"

    def __init__(self) -> None:
        self.model = LocalModel(0)
        self.stopwatch = ModelStopwatch(is_token=lambda part: isinstance(part, TextDelta))

    def pace(self, tokens_per_second: float) -> None:
        self.model = LocalModel(tokens_per_second)
        self.stopwatch = ModelStopwatch(is_token=lambda part: isinstance(part, TextDelta))

    def stream(self, request: ModelRequest) -> Iterator[Any]:
        return self.stopwatch.wrap(self.model.stream(request))


def gateway_environment(stage: Stage, resources: Any, settings: Any) -> FunctionEnvironment:
    """The chat function's environment, as the Pulumi program and the local runtime build it."""
    env = settings.function_environment(
        usage_table=resources.usage_table,
        prepared_responses_table=resources.prepared_responses_table,
        tier_config_parameter=resources.tier_config_parameter,
        events_http_endpoint=stage.publish_url,
        analytics_stream=resources.analytics_stream,
        model_provider="local",
    )
    stage.set_env(**env.variables())
    return env


def create_gateway_resources(stage: Stage, stack: str = "dev") -> tuple[Any, Any]:
    """The gateway's tables, tier parameter and stream in moto, from the same source of truth
    as the stack (the local runtime's bootstrap), and a steady-state user."""
    from local.aws import bootstrap
    from local.stack import load_stack

    settings = load_stack(stack)
    resources = bootstrap(settings, stage.moto_url)
    seed_steady_state_user(resources.usage_table, USER_SUB)
    return settings, resources


def seed_steady_state_user(table: str, sub: str, per_bucket: tuple[int, int] = (40, 300)) -> None:
    """A user who chatted in every 10-minute bucket of the last day (as the reference's user):
    the usage item then holds 144 buckets, its steady-state size."""
    now = int(time.time())
    current = bucket_start(now)
    item: dict[str, Any] = {"pk": {"S": f"user#{sub}"}, VERSION: {"N": "144"}}
    for k in range(DAILY_BUCKETS - 1):  # leave the current bucket to the measured turns
        bucket = current - (k + 1) * 600
        item[bucket_attribute(bucket, "i")] = {"N": str(per_bucket[0])}
        item[bucket_attribute(bucket, "o")] = {"N": str(per_bucket[1])}
    month = month_key(now)
    item[month_attribute(month, "i")] = {"N": str(per_bucket[0] * 143)}
    item[month_attribute(month, "o")] = {"N": str(per_bucket[1] * 143)}
    boto3.client("dynamodb").put_item(TableName=table, Item=item)


def chat_event(sub: str, inbound: str, text: str, groups: list[str]) -> dict[str, Any]:
    """An onPublish event as AppSync Events delivers it (EVENT mode)."""
    return {
        "identity": {"sub": sub, "username": "bench", "groups": groups, "claims": {"sub": sub}},
        "result": None,
        "request": {"headers": {}, "domainName": None},
        "info": {
            "channel": {"path": f"/{inbound}/{sub}", "segments": [inbound, sub]},
            "channelNamespace": {"name": inbound},
            "operation": "PUBLISH",
        },
        "error": None,
        "prev": None,
        "stash": {},
        "outErrors": [],
        "events": [
            {
                "id": str(uuid.uuid4()),
                "payload": {
                    "conversationId": "c-bench",
                    "turnId": f"t-{uuid.uuid4().hex[:12]}",
                    "messages": [{"role": "user", "content": [{"text": text}]}],
                },
            }
        ],
    }


class LambdaContext:
    aws_request_id = "bench"
    function_name = "ai-gateway-bench-chat"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ai-gateway-bench-chat"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def is_gateway_delta(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("type") == "delta"


class GatewayBench:
    """A warm chat function: one runtime (its clients, pool and cached tier config) kept across
    turns, like a Lambda execution environment."""

    def __init__(self, stage: Stage, env: FunctionEnvironment, settings: Any) -> None:
        import chat
        from gateway.runtime import Runtime

        self.stage = stage
        self.settings = settings
        self.model = TimedModel()
        self.handler = chat.make_handler(Runtime(env, provider=self.model))

    def run_turn(self, pace: str, tokens_per_second: float, text: str = "Hello") -> TurnMeasurement:
        self.model.pace(tokens_per_second)
        event = chat_event(USER_SUB, self.settings.inbound_namespace, text, [BENCH_TIER])

        def run() -> str:
            self.handler(event, LambdaContext())
            return "done"

        return measure_turn(
            "gateway", pace, self.stage, run, self.model.stopwatch, is_gateway_delta
        )
