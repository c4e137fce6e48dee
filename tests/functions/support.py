"""Test doubles and builders shared by the function tests: publish events, a recording events
endpoint, scripted model streams, a settable clock, tables in moto, and the chat gateway the
``gateway`` fixture (``conftest.py``) gives a test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore.session
import chat
from gateway.contract import ErrorCode
from gateway.environment import FunctionEnvironment
from gateway.prepared import PreparedResponseTable
from gateway.providers import Completion, ModelFailure, ModelRequest, TextDelta
from gateway.publisher import EventsHttpPublisher
from gateway.runtime import Runtime
from gateway.schema import PREPARED_RESPONSES_TABLE, USAGE_TABLE
from gateway.telemetry import TurnRecord
from gateway.tiers import TierConfig
from gateway.usage import TokenUsage
from gateway.usage_store import DynamoTurnStore

from tests.support.appsync import appsync_event, lambda_context

SUB = "3f1c2a9e-1111-4a4a-9c9c-000000000001"
OTHER_SUB = "7b2d4c6e-2222-4b4b-8d8d-000000000002"
INBOUND, OUTBOUND = "chat", "replies"

TIER_DOCUMENT: dict[str, Any] = {
    "defaultTier": "free",
    "tiers": {
        "free": {
            "models": ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"],
            "defaultModel": "amazon.nova-micro-v1:0",
            "dailyInputTokens": 2000,
            "dailyOutputTokens": 4000,
            "monthlyInputTokens": 20000,
            "monthlyOutputTokens": 40000,
            "maxOutputTokensPerTurn": 512,
            "cache": True,
        },
        "pro": {
            "models": ["amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"],
            "defaultModel": "amazon.nova-pro-v1:0",
            "dailyInputTokens": 200000,
            "dailyOutputTokens": 400000,
            "monthlyInputTokens": 2000000,
            "monthlyOutputTokens": 4000000,
            "maxOutputTokensPerTurn": 2048,
            "cache": False,
            "fallbackModel": "amazon.nova-lite-v1:0",
            "guardrail": {"identifier": "abc123guard", "version": "2"},
        },
    },
}


def tier_config(prices: dict[str, Any] | None = None, **overrides: Any) -> TierConfig:
    """The test tiers, with ``free`` settings overridden (``dailyOutputTokens=600``...) and the
    models' ``prices`` (``{"inputPer1k", "outputPer1k"}`` for every model)."""
    doc = json.loads(json.dumps(TIER_DOCUMENT))
    doc["tiers"]["free"].update(overrides)
    if prices is not None:
        doc["prices"] = {
            model: prices for tier in doc["tiers"].values() for model in tier["models"]
        }
    return TierConfig.from_document(doc)


class StaticTiers:
    def __init__(self, config: TierConfig | None = None) -> None:
        self.config = config or tier_config()

    def current(self) -> TierConfig:
        return self.config


def function_environment(**fields: Any) -> FunctionEnvironment:
    """The chat function's environment over the test tables and namespaces (``fields`` add to
    or override it: ``events_http_endpoint=endpoint.url``...)."""
    defaults: dict[str, Any] = {
        "usage_table": "usage",
        "prepared_responses_table": "prepared",
        "inbound_namespace": INBOUND,
        "outbound_namespace": OUTBOUND,
        "stream_flush_ms": 20,
    }
    return FunctionEnvironment(**{**defaults, **fields})


def cognito_identity(sub: str = SUB, groups: list[str] | None = None) -> dict[str, Any]:
    return {
        "sub": sub,
        "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test",
        "username": "alice",
        "claims": {"sub": sub, "cognito:groups": groups or []},
        "sourceIp": ["203.0.113.7"],
        "defaultAuthStrategy": "ALLOW",
        "groups": groups,
    }


IAM_IDENTITY = {
    "accountId": "123456789012",
    "cognitoIdentityPoolId": None,
    "cognitoIdentityId": None,
    "sourceIp": ["203.0.113.7"],
    "username": "AROAEXAMPLE:session",
    "userArn": "arn:aws:sts::123456789012:assumed-role/some-role/session",
    "cognitoIdentityAuthType": None,
    "cognitoIdentityAuthProvider": None,
}


def publish_event(
    *payloads: Any, sub: str = SUB, groups: list[str] | None = None, path: str | None = None
) -> dict[str, Any]:
    return appsync_event(
        "PUBLISH",
        path or f"/{INBOUND}/{sub}",
        cognito_identity(sub, groups),
        events=[{"id": f"evt-{i}", "payload": p} for i, p in enumerate(payloads)],
    )


def chat_payload(text: str = "Hello there", **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "conversationId": "c-1",
        "turnId": "t-1",
        "messages": [{"role": "user", "content": [{"text": text}]}],
    }
    payload.update(fields)
    return payload


@dataclass
class Publish:
    path: str
    headers: dict[str, str]
    channel: str
    events: list[dict[str, Any]]


@dataclass
class RecordingEndpoint:
    """A stand-in for the AppSync Events HTTP endpoint that records every publish."""

    publishes: list[Publish] = field(default_factory=list)
    #: Statuses to answer with before answering 200 (one per request).
    scripted_statuses: list[int] = field(default_factory=list)
    #: Indexes to report under ``failed`` in a 200 answer (one list per request).
    scripted_failures: list[list[int]] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with recorder._lock:
                    recorder.connections += 1

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with recorder._lock:
                    status = (
                        recorder.scripted_statuses.pop(0) if recorder.scripted_statuses else 200
                    )
                    failed = recorder.scripted_failures.pop(0) if recorder.scripted_failures else []
                    document = json.loads(body)
                    events = document["events"]
                    if status == 200:
                        recorder.publishes.append(
                            Publish(
                                self.path,
                                {k.lower(): v for k, v in self.headers.items()},
                                document["channel"],
                                [json.loads(e) for i, e in enumerate(events) if i not in failed],
                            )
                        )
                answer = (
                    {
                        "successful": [
                            {"identifier": f"id-{i}", "index": i}
                            for i in range(len(events))
                            if i not in failed
                        ],
                        "failed": [
                            {"identifier": f"id-{i}", "index": i, "code": 500, "message": "x"}
                            for i in failed
                        ],
                    }
                    if status == 200
                    else {"errors": [{"errorType": "Throttled"}]}
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/event"

    def events(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                e
                for p in self.publishes
                if channel is None or p.channel == channel
                for e in p.events
            ]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ScriptedModel:
    """A model that streams the given pieces, then completes — or fails where told to."""

    name = "bedrock"

    def __init__(
        self,
        pieces: Iterable[str] = ("Hello", ", ", "world", "!"),
        *,
        usage: TokenUsage | None = None,
        fail_before: ErrorCode | None = None,
        fail_after: int | None = None,
        fail_code: ErrorCode = ErrorCode.MODEL_ERROR,
        fail_models: Iterable[str] | None = None,
    ) -> None:
        self.pieces = list(pieces)
        self.usage = usage or TokenUsage(11, len(self.pieces))
        self.fail_before = fail_before
        self.fail_after = fail_after
        self.fail_code = fail_code
        self.fail_models = set(fail_models) if fail_models is not None else None
        self.requests: list[ModelRequest] = []

    def stream(self, request: ModelRequest) -> Iterator[TextDelta | Completion]:
        self.requests.append(request)
        failing = self.fail_models is None or request.model_id in self.fail_models
        if self.fail_before is not None and failing:
            raise ModelFailure(self.fail_before, "scripted")
        for index, piece in enumerate(self.pieces):
            if self.fail_after is not None and index == self.fail_after and failing:
                raise ModelFailure(self.fail_code, "scripted mid-stream break")
            yield TextDelta(piece)
        yield Completion("end_turn", self.usage)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class SettableClock:
    """Wall clock at ``now`` (settable); monotonic time is real, for latencies."""

    def __init__(self, now: float) -> None:
        self.wall = now

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        import time

        return time.monotonic()


def create_tables(client: Any, usage: str = "usage", prepared: str = "prepared") -> None:
    for name, schema in ((usage, USAGE_TABLE), (prepared, PREPARED_RESPONSES_TABLE)):
        client.create_table(
            TableName=name,
            KeySchema=schema.key_schema,
            AttributeDefinitions=schema.attribute_definitions,
            BillingMode="PAY_PER_REQUEST",
        )


class CountingCalls:
    """Counts AWS API calls a boto3 client makes, by operation name: those of the turns in
    ``calls``, the background refreshes of the prepared-response index (``Scan``) apart."""

    BACKGROUND = frozenset({"Scan"})

    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        self.background: list[str] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            (self.background if model.name in self.BACKGROUND else self.calls).append(model.name)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.background.clear()


class SerialisedClient:
    """A boto3 client whose calls run one at a time.

    DynamoDB applies each request to an item atomically; moto evaluates a condition and applies
    the update in separate Python steps, so concurrent requests could interleave inside moto.
    Serialising requests gives moto DynamoDB's per-request atomicity without hiding any of the
    gateway's own concurrency (its read-decide-write cycles still interleave freely).
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


# -- the chat gateway the turn tests drive (the ``gateway`` fixture) -------------------------

OWN_CHANNEL = f"/{OUTBOUND}/{SUB}"


class RecordedAnalytics:
    def __init__(self, fail: bool = False) -> None:
        self.records: list[TurnRecord] = []
        self.fail = fail

    def record(self, record: TurnRecord) -> None:
        if self.fail:
            raise ConnectionError("firehose unreachable")
        self.records.append(record)


@dataclass
class Gateway:
    endpoint: RecordingEndpoint
    dynamodb: Any
    calls: CountingCalls
    model: ScriptedModel
    analytics: RecordedAnalytics
    env: FunctionEnvironment
    tiers: StaticTiers = field(default_factory=StaticTiers)

    def handler(self, **runtime: Any):
        return chat.make_handler(self.runtime(**runtime))

    def runtime(self, **runtime: Any) -> Runtime:
        credentials = botocore.session.get_session().get_credentials()
        publisher = EventsHttpPublisher(
            self.endpoint.url,
            region="us-east-1",
            credentials=credentials.get_frozen_credentials,
            base_delay=0.001,
        )
        store = DynamoTurnStore(lambda: self.dynamodb, "usage", "prepared")
        options = {
            "tiers": self.tiers,
            "store": store,
            "provider": self.model,
            "publisher": publisher,
            "analytics": self.analytics,
            **runtime,
        }
        return Runtime(self.env, **options)

    def run(self, *payloads: Any, **event: Any) -> list[dict[str, Any]]:
        self.handler()(publish_event(*payloads, **event), lambda_context())
        return self.endpoint.events(OWN_CHANNEL)

    def usage_item(self, sub: str = SUB) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName="usage", Key={"pk": {"S": f"user#{sub}"}}, ConsistentRead=True
        ).get("Item")
        return {k: next(iter(v.values())) for k, v in item.items()} if item else None


def charged_attributes(item: dict[str, Any] | None) -> dict[str, Any]:
    """The attributes of a usage item that hold tokens: settled buckets and months, reservations."""
    return {k: v for k, v in (item or {}).items() if k[:2] in ("d#", "m#", "c#", "r#")}


def requests_counted(item: dict[str, Any] | None) -> int:
    """Requests counted against the rate in a usage item."""
    return sum(int(v) for k, v in (item or {}).items() if k.startswith("q#"))


def deltas(events: list[dict[str, Any]]) -> str:
    return "".join(e["text"] for e in events if e["type"] == "delta")


def terminal(events: list[dict[str, Any]]) -> dict[str, Any]:
    ends = [e for e in events if e["type"] in ("done", "error")]
    assert len(ends) == 1, f"expected exactly one terminal event, got {ends}"
    assert events[-1] is ends[0], "the terminal event must be the last event of the turn"
    return ends[0]


def assert_gap_free(events: list[dict[str, Any]]) -> None:
    assert [e["seq"] for e in events] == list(range(len(events)))


def emf_blobs(out: str) -> list[dict[str, Any]]:
    blobs = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


def metric_values(blobs: list[dict[str, Any]], name: str, **dimensions: str) -> list[float]:
    found: list[float] = []
    for blob in blobs:
        if name in blob and all(blob.get(k) == v for k, v in dimensions.items()):
            value = blob[name]
            found.extend(value if isinstance(value, list) else [value])
    return found


def prepare(gateway: Gateway, prompt: str, response: str, scope: str = "*") -> None:
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("prepared")
    PreparedResponseTable(table).put(prompt, response, scope=scope)


def follow_up(turn_id: str) -> dict[str, Any]:
    """A later turn of a conversation (never served from prepared responses)."""
    return chat_payload(
        messages=[
            {"role": "user", "content": [{"text": "hi"}]},
            {"role": "assistant", "content": [{"text": "hi!"}]},
            {"role": "user", "content": [{"text": "and then?"}]},
        ],
        turnId=turn_id,
    )
