"""The gateway on the benchmark stage: its tables, tier parameter and analytics stream in moto (from
the same source of truth as the stack, the local runtime's bootstrap), a user with a day of usage,
and the chat function's environment as the Pulumi program builds it, with the model provider
``bedrock`` pointed at the stage's fake Bedrock. The function itself runs in a worker process
(:mod:`bench.worker`) through ``functions/chat.py``'s ``handler``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parent.parent

BENCH_TIER = "pro"
USER_SUB = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
FUNCTION_NAME = "ai-gateway-bench-chat"


def create_gateway(moto_url: str, publish_url: str, stack: str = "dev") -> dict[str, Any]:
    """Create the gateway's resources; return the worker job's gateway part and environment."""
    from local.aws import bootstrap
    from local.stack import load_stack

    settings = _measurable(load_stack(stack))
    resources = bootstrap(settings, moto_url)
    env = settings.function_environment(
        usage_table=resources.usage_table,
        prepared_responses_table=resources.prepared_responses_table,
        tier_config_parameter=resources.tier_config_parameter,
        events_http_endpoint=publish_url,
        analytics_stream=resources.analytics_stream,
        model_provider="bedrock",
    )
    seed_steady_state_user(resources.usage_table, USER_SUB)
    return {
        "design": "gateway",
        "function_name": FUNCTION_NAME,
        "sub": USER_SUB,
        "tier": BENCH_TIER,
        "inbound_namespace": settings.inbound_namespace,
        "sink": "sink",
        "env": {**env.variables(), "POWERTOOLS_SERVICE_NAME": "chat"},
        "stream_flush_ms": env.stream_flush_ms,
    }


def _measurable(settings: Any) -> Any:
    """The stack with the bench tier's request limits lifted: the bench runs one user's turns
    back to back, faster than any tier's ``requestsPerMinute`` allows; the limits are enforced in
    the same conditional write either way, so lifting them changes no request a turn makes."""
    from dataclasses import replace

    tiers = settings.tier_config
    tier = replace(
        tiers.tiers[BENCH_TIER],
        requests_per_minute_setting=100_000,
        max_concurrent_turns_setting=1_000,
    )
    return replace(settings, tier_config=replace(tiers, tiers={**tiers.tiers, BENCH_TIER: tier}))


def seed_steady_state_user(table: str, sub: str, per_bucket: tuple[int, int] = (40, 300)) -> None:
    """A user who chatted in every 10-minute bucket of the last day: the usage item then holds
    144 buckets, its steady-state size (what each read and conditional write carries)."""
    try:
        from gateway.usage import VERSION, bucket_attribute, month_attribute
        from gateway.windows import DAILY_BUCKETS, bucket_start, month_key
    except ImportError as err:  # the usage item's layout moved: measure a new user instead
        print(f"bench: not seeding a day of usage ({err})", file=sys.stderr)
        return
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
