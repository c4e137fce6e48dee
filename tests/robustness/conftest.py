"""Fixtures of the robustness suites (fuzz, concurrency, faults) and their case counts.

Each suite gets a gateway stage of its own: moto in server mode on a free loopback port behind a
counting (and fault-injecting) endpoint, a recording AppSync Events publish endpoint, and the
gateway's tables, tier parameter and analytics stream created by the local runtime's bootstrap
from a stack config — the same source of truth the Pulumi program uses. The chat function's
environment is set as the components set it; it is restored when the suite ends.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from gateway.environment import FunctionEnvironment
from gateway.usage import VERSION, UsageSnapshot, bucket_attribute, month_attribute
from gateway.windows import bucket_start, month_key

from bench.harness import Stage
from tests.robustness.cases import CASES, OUTCOMES, appsync_event

REPO = Path(__file__).resolve().parents[2]

INBOUND, OUTBOUND = "chat", "replies"
MICRO, LITE, PRO = "amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"

#: The suites' tiers: small per-turn maxima keep turns short; ``free`` is the default tier. Their
#: request limits are far above what the suites send (rates have a suite of their own).
TIERS: dict[str, Any] = {
    "free": {
        "models": [MICRO, LITE],
        "defaultModel": MICRO,
        "dailyInputTokens": 200_000,
        "dailyOutputTokens": 4_000,
        "monthlyInputTokens": 2_000_000,
        "monthlyOutputTokens": 100_000,
        "maxOutputTokensPerTurn": 128,
        "cache": True,
        "requestsPerMinute": 100_000,
        "maxConcurrentTurns": 1_000,
    },
    "pro": {
        "models": [LITE, PRO],
        "defaultModel": PRO,
        "dailyInputTokens": 400_000,
        "dailyOutputTokens": 800_000,
        "monthlyInputTokens": 4_000_000,
        "monthlyOutputTokens": 8_000_000,
        "maxOutputTokensPerTurn": 96,
        "cache": False,
        "fallbackModel": LITE,
        "requestsPerMinute": 100_000,
        "maxConcurrentTurns": 1_000,
    },
}


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    if not CASES:
        return
    terminalreporter.section("robustness cases run")
    for suite, count in sorted(CASES.items()):
        terminalreporter.write_line(f"{suite}: {count}")
    terminalreporter.write_line(f"total: {sum(CASES.values())}")
    for outcome, count in sorted(OUTCOMES.items()):
        terminalreporter.write_line(f"  {outcome}: {count}")


def _settings(stack: str) -> Any:
    from settings import load_settings

    config = {"defaultTier": "free", "tiers": TIERS, "streamFlushMs": 50}
    return load_settings(stack, "us-east-1", config.get)


def _clear_powertools_caches() -> None:
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS

    parameters.clear_caches()
    DEFAULT_PROVIDERS.clear()  # its SSM client must talk to this suite's moto


@dataclass
class GatewayStage:
    """A running stage and what the gateway was given on it."""

    stage: Stage
    env: FunctionEnvironment
    usage_table: str
    prepared_table: str

    # -- AppSync events ------------------------------------------------------------------------
    @staticmethod
    def publish_event(
        identity: Any,
        payloads: list[Any],
        channel: str | None = None,
        segments: Any = "derive",
    ) -> dict[str, Any]:
        """The onPublish event AppSync Events delivers to the chat function (EVENT mode)."""
        sub = identity.get("sub") if isinstance(identity, Mapping) else None
        path = channel if channel is not None else f"/{INBOUND}/{sub}"
        if segments == "derive":
            segments = [s for s in str(path).split("/") if s]
        return {
            **appsync_event(identity, INBOUND, "PUBLISH", path, segments),
            "events": [{"id": str(uuid.uuid4()), "payload": p} for p in payloads],
        }

    @staticmethod
    def user(sub: str | None = None, groups: list[str] | None = None) -> dict[str, Any]:
        sub = sub or str(uuid.uuid4())
        return {"sub": sub, "username": f"u-{sub[:8]}", "groups": groups, "claims": {"sub": sub}}

    @staticmethod
    def turn(text: str = "Hello", **fields: Any) -> dict[str, Any]:
        return {
            "conversationId": "c-1",
            "turnId": f"t-{uuid.uuid4().hex[:16]}",
            "messages": [{"role": "user", "content": [{"text": text}]}],
            **fields,
        }

    # -- what users saw ------------------------------------------------------------------------
    def mark(self) -> int:
        return len(self.stage.sink.snapshot())

    def published_since(self, mark: int) -> list[Any]:
        return self.stage.sink.snapshot()[mark:]

    # -- the usage store -----------------------------------------------------------------------
    def usage_item(self, sub: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        found = boto3.client("dynamodb").get_item(
            TableName=self.usage_table, Key={"pk": {"S": f"user#{sub}"}}, ConsistentRead=True
        )
        item = found.get("Item")
        if item is None:
            return None
        deserializer = TypeDeserializer()
        return {k: deserializer.deserialize(v) for k, v in item.items()}

    def usage(self, sub: str) -> UsageSnapshot:
        return UsageSnapshot.from_item(self.usage_item(sub))

    def seed(
        self,
        sub: str,
        now: float,
        *,
        daily: tuple[int, int] = (0, 0),
        monthly: tuple[int, int] | None = None,
    ) -> None:
        """Settled usage for ``sub``: ``daily`` (input, output) in the bucket before ``now``'s,
        and ``monthly`` (defaults to the daily figures) in ``now``'s month."""
        monthly = monthly if monthly is not None else daily
        bucket = bucket_start(int(now)) - 600
        month = month_key(int(now))
        item = {
            "pk": {"S": f"user#{sub}"},
            VERSION: {"N": "1"},
            bucket_attribute(bucket, "i"): {"N": str(daily[0])},
            bucket_attribute(bucket, "o"): {"N": str(daily[1])},
            month_attribute(month, "i"): {"N": str(monthly[0])},
            month_attribute(month, "o"): {"N": str(monthly[1])},
        }
        boto3.client("dynamodb").put_item(TableName=self.usage_table, Item=item)


@pytest.fixture(scope="module")
def gateway_stage(request: pytest.FixtureRequest) -> Iterator[GatewayStage]:
    """A stage of the suite's own: its stack name (so its tables, parameter and the chat
    module's cached runtime are its own) comes from the test module's name."""
    from local.aws import bootstrap

    # Within the program's stack-name limit (settings.MAX_STACK_NAME_LENGTH).
    stack = ("robust-" + request.module.__name__.rsplit(".", 1)[-1].replace("_", "-"))[:30]
    settings = _settings(stack)
    stage = Stage().start()
    try:
        resources = bootstrap(settings, stage.moto_url)
        env = FunctionEnvironment(
            usage_table=resources.usage_table,
            prepared_responses_table=resources.prepared_responses_table,
            tier_config_parameter=resources.tier_config_parameter,
            tier_config_cache_seconds=settings.tier_config_cache_seconds,
            events_http_endpoint=stage.publish_url,
            inbound_namespace=INBOUND,
            outbound_namespace=OUTBOUND,
            analytics_stream=resources.analytics_stream,
            stream_flush_ms=settings.stream_flush_ms,
            max_messages=settings.max_messages,
            max_message_chars=settings.max_message_chars,
            model_provider="local",
            local_model_tokens_per_second=0.0,
        )
        stage.set_env(
            **env.variables(),
            POWERTOOLS_LOG_LEVEL="WARNING",
            POWERTOOLS_METRICS_NAMESPACE="AiGateway",
            POWERTOOLS_SERVICE_NAME="chat",
            AWS_PROFILE=None,
        )
        _clear_powertools_caches()
        yield GatewayStage(stage, env, resources.usage_table, resources.prepared_responses_table)
    finally:
        _clear_powertools_caches()
        stage.stop()


@pytest.fixture(scope="module")
def stage(gateway_stage: GatewayStage) -> GatewayStage:
    """The module's stage, under the short name the suites use."""
    return gateway_stage


def terminal_of(events: list[Any]) -> list[dict[str, Any]]:
    return [e for e in events if isinstance(e, dict) and e.get("type") in ("done", "error")]


def emf_blobs(text: str) -> list[dict[str, Any]]:
    """EMF documents printed by Powertools metrics (one JSON object per line with ``_aws``)."""
    blobs = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


def emf_metric(blobs: list[dict[str, Any]], name: str, **dimensions: str) -> float:
    """The sum of metric ``name`` over blobs whose dimensions include ``dimensions``."""
    total = 0.0
    for blob in blobs:
        names = {m["Name"] for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
        if name in names and all(blob.get(k) == v for k, v in dimensions.items()):
            value = blob[name]
            total += sum(value) if isinstance(value, list) else value
    return total
