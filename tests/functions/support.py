"""Test doubles and builders shared by the function tests: AppSync events, a recording events
endpoint, scripted model streams, a settable clock, tables in moto."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gateway.contract import ErrorCode
from gateway.providers import Completion, ModelFailure, ModelRequest, TextDelta
from gateway.schema import PREPARED_RESPONSES_TABLE, USAGE_TABLE
from gateway.tiers import TierConfig
from gateway.usage import TokenUsage

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


def appsync_event(
    operation: str,
    path: str,
    identity: Any,
    events: list[dict[str, Any]] | None = None,
    segments: list[str] | None = None,
) -> dict[str, Any]:
    """The event AppSync Events hands a DIRECT Lambda handler."""
    event: dict[str, Any] = {
        "identity": identity,
        "result": None,
        "request": {"headers": {"host": "example.appsync-api.us-east-1.amazonaws.com"}},
        "info": {
            "channel": {
                "path": path,
                "segments": segments if segments is not None else path.strip("/").split("/"),
            },
            "channelNamespace": {"name": path.strip("/").split("/")[0]},
            "operation": operation,
        },
        "error": None,
        "prev": None,
        "stash": {},
        "outErrors": [],
    }
    if events is not None:
        event["events"] = events
    return event


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


class LambdaContext:
    function_name = "chat"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:chat"

    def __init__(self, request_id: str = "req-0001") -> None:
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


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
