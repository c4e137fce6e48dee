"""The reference design's real handler, as its CDK app deploys it, on the benchmark's stage.

The reference is the AWS sample's code (MIT-0), checked out beside this repository at
``../shared/reference`` (or wherever ``BENCH_REFERENCE`` / ``--reference`` points). The benchmark
runs it as it is, never a copy: its Python handler from ``eventhandlers/`` and, read at run time
from its CDK sources in ``deploy/``, the chat function's environment variable names and memory
size, the limits the app passes, and the key schemas of its tables. If the CDK sources no longer
say what this module looks for, it stops with an error naming what it could not find.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_LOCATION = REPO.parent / "shared" / "reference"

#: The reference publishes to its Events API over HTTPS with ``requests``; its poetry.lock pins
#: this file's version, installed apart from the project's virtualenv (see the Makefile).
REQUIREMENTS = Path(__file__).with_name("requirements-reference.txt")
SITE = REPO / ".local" / "bench" / "reference-site"

USER_SUB = "0f7e2d4c-5b1a-4c3e-9d8f-7a6b5c4d3e2f"
MODULE = "eventhandlers.chatbot_handler"


class ReferenceError(RuntimeError):
    """The reference checkout is missing or its CDK sources do not say what the bench needs."""


@dataclass(frozen=True)
class ReferenceStack:
    root: Path
    environment_names: tuple[str, ...]  # what the chat function's environment holds
    memory_mb: int
    limits: dict[str, int]  # DAILY_INPUT_LIMIT... as the app passes them
    usage_keys: tuple[str, str]  # the token-usage table's partition and sort key
    cache_key: str  # the response-cache table's partition key
    handler: str  # "eventhandlers.chatbot_handler.lambda_handler"

    @property
    def code(self) -> Path:
        return self.root / "eventhandlers"


def wanted(explicit: str | None = None) -> Path:
    """Where the reference checkout is looked for: the flag, ``BENCH_REFERENCE``, the default."""
    return Path(explicit or os.environ.get("BENCH_REFERENCE") or DEFAULT_LOCATION)


def locate(explicit: str | None = None) -> Path | None:
    """The reference checkout, or None when it is not there."""
    location = wanted(explicit)
    if (location / "eventhandlers" / "eventhandlers" / "chatbot_handler.py").is_file():
        return location.resolve()
    return None


def _find(pattern: str, text: str, what: str, source: Path) -> re.Match[str]:
    found = re.search(pattern, text, re.S)
    if not found:
        raise ReferenceError(f"{source}: could not find {what}")
    return found


def read_stack(root: Path) -> ReferenceStack:
    """What the reference's CDK app gives its chat function, read from ``deploy/*.ts``."""
    deploy = root / "deploy"
    functions_ts = deploy / "chat-lambda-functions-construct.ts"
    app_ts, usage_ts = deploy / "app-stack.ts", deploy / "token-usage-construct.ts"
    cache_ts = deploy / "response-cache-construct.ts"
    for source in (functions_ts, app_ts, usage_ts, cache_ts):
        if not source.is_file():
            raise ReferenceError(f"missing CDK source {source}")
    functions = functions_ts.read_text()
    chatbot = _find(
        r'"ChatbotHandler",\s*\{(.*?)role:', functions, "the ChatbotHandler function", functions_ts
    ).group(1)
    handler = _find(r'handler:\s*"([^"]+)"', chatbot, "its handler", functions_ts).group(1)
    memory = int(_find(r"memorySize:\s*(\d+)", chatbot, "its memorySize", functions_ts).group(1))
    environment = _find(r"environment:\s*\{(.*)\}", chatbot, "its environment", functions_ts)
    names = re.findall(r"\b([A-Z][A-Z0-9_]+):", environment.group(1))
    app = app_ts.read_text()
    names += re.findall(r'chatbotHandler\.addEnvironment\(\s*"([A-Z0-9_]+)"', app)
    limits = {}
    for prop in ("dailyInputLimit", "dailyOutputLimit", "monthlyInputLimit", "monthlyOutputLimit"):
        value = _find(rf"\b{prop}:\s*(\d+)", app, f"the {prop} the app passes", app_ts).group(1)
        limits[re.sub(r"(?<!^)([A-Z])", r"_\1", prop).upper()] = int(value)
    usage = usage_ts.read_text()
    partition = _find(r'partitionKey:\s*\{\s*name:\s*"(\w+)"', usage, "partition key", usage_ts)
    sort = _find(r'sortKey:\s*\{\s*name:\s*"(\w+)"', usage, "sort key", usage_ts)
    cache = _find(
        r'partitionKey:\s*\{\s*name:\s*"(\w+)"', cache_ts.read_text(), "partition key", cache_ts
    )
    return ReferenceStack(
        root=root,
        environment_names=tuple(dict.fromkeys(names)),
        memory_mb=memory,
        limits=limits,
        usage_keys=(partition.group(1), sort.group(1)),
        cache_key=cache.group(1),
        handler=handler,
    )


@dataclass(frozen=True)
class ReferenceResources:
    usage_table: str = "ref-UserTokenUsage"
    cache_table: str = "ref-ResponseCache"
    analytics_stream: str = "ref-chatbot-logs"
    guardrail_id: str = "bench-guardrail"


def environment(
    stack: ReferenceStack, resources: ReferenceResources, events_host: str
) -> dict[str, str]:
    """The chat function's environment as the CDK app sets it, on this stage.

    Resource names (tables, stream, the Events API's DNS name) are the stage's. The token limits
    are the app's values scaled up 1,000x: the app's daily output limit (20,000, with a 50%
    reservation per turn) admits one 512-token turn at a time for a user with the steady-state
    usage below, and a benchmark of served turns needs every turn admitted; the limits change no
    request the handler makes.
    """
    values = {
        "RESPONSE_CHANNEL": "Outbound-Messages",
        "TOKEN_USAGE_TABLE": resources.usage_table,
        "RESPONSE_CACHE_TABLE": resources.cache_table,
        "DEFAULT_MODEL_ID": "us.anthropic.claude-opus-4-1-20250805-v1:0",
        "BEDROCK_GUARDRAIL_ID": resources.guardrail_id,
        "BEDROCK_GUARDRAIL_VERSION": "1",
        "FIREHOSE_DELIVERY_STREAM": resources.analytics_stream,
        "APPSYNC_ENDPOINT_URL": events_host,
        **{name: str(limit * 1000) for name, limit in stack.limits.items()},
    }
    unknown = [name for name in stack.environment_names if name not in values]
    if unknown:
        raise ReferenceError(
            f"the reference's chat function now reads {', '.join(unknown)}; "
            "bench/reference_stack.py does not know what to set them to"
        )
    return {name: values[name] for name in stack.environment_names}


def create_resources(stack: ReferenceStack, resources: ReferenceResources) -> None:
    """The reference's tables and analytics stream in moto, keyed as its CDK app keys them."""
    import boto3

    ddb = boto3.client("dynamodb")
    partition, sort = stack.usage_keys
    for table, keys in (
        (resources.usage_table, (partition, sort)),
        (resources.cache_table, (stack.cache_key,)),
    ):
        ddb.create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": k, "KeyType": "HASH" if i == 0 else "RANGE"}
                for i, k in enumerate(keys)
            ],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    boto3.client("s3").create_bucket(Bucket="ref-chatbot-logs")
    boto3.client("firehose").create_delivery_stream(
        DeliveryStreamName=resources.analytics_stream,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/ref-chatbot-logs",
            "BucketARN": "arn:aws:s3:::ref-chatbot-logs",
        },
    )
