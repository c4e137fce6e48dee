"""An in-process gateway for the hostile-input suites: the real chat handler (``chat``) over moto
in process for DynamoDB, the local model, and an Event API stand-in that accepts only what the
service accepts (every event JSON text of valid Unicode), recording what reached each channel.

It is fast enough to run thousands of generated events per test run, which the stage in
``conftest`` (moto in server mode, a real HTTP publish endpoint) is not.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import chat
from gateway.providers import LocalModel, ModelProvider
from gateway.relay import PublishError
from gateway.runtime import Runtime
from gateway.telemetry import NoAnalytics, TurnCounters, TurnRecord

from tests.functions.support import (
    INBOUND,
    OUTBOUND,
    StaticTiers,
    cognito_identity,
    create_tables,
    function_environment,
)
from tests.support.appsync import appsync_event, lambda_context

#: Decides, per publish request (numbered from 0), which event indexes the endpoint refuses.
Refusals = Callable[[int, list[str]], set[int]]


@dataclass
class EventApi:
    """The Event API's publish side as the function sees it: it refuses an event that is not
    JSON text of valid Unicode (and whatever ``refuse`` says), the rest reaches subscribers."""

    refuse: Refusals | None = None
    delivered: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def publish(self, channel: str, events: list[str]) -> int:
        with self._lock:
            number = self.requests
            self.requests += 1
            refused = set(self.refuse(number, events)) if self.refuse else set()
            for index, text in enumerate(events):
                try:
                    text.encode("utf-8")
                    document = json.loads(text)
                except (UnicodeEncodeError, ValueError):
                    refused.add(index)
                    continue
                if index not in refused:
                    self.delivered.append((channel, document))
        if refused:
            kept = tuple(i for i in range(len(events)) if i not in refused)
            raise PublishError(f"{len(refused)} event(s) refused", kept)
        return 0

    def events(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [e for c, e in self.delivered if channel is None or c == channel]

    def channels(self) -> set[str]:
        with self._lock:
            return {c for c, _ in self.delivered}


class NullMetrics:
    def emit(self, record: TurnRecord, counters: TurnCounters) -> None:
        return None


@contextmanager
def aws_in_process() -> Iterator[Any]:
    """Moto in process with the gateway's tables (``usage``, ``prepared``); fake credentials."""
    from moto import mock_aws

    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_tables(client)
            yield client
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_AWS_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
)


class HostileGateway:
    """The chat handler on a runtime whose store is the real DynamoDB adapter (on moto)."""

    def __init__(
        self,
        *,
        provider: ModelProvider | None = None,
        api: EventApi | None = None,
        log: Any = None,
        tiers: StaticTiers | None = None,
        **runtime: Any,
    ) -> None:
        self.api = api or EventApi()
        env = function_environment(model_provider="local")
        self.runtime = Runtime(
            env,
            tiers=tiers or StaticTiers(),
            provider=provider or LocalModel(0),
            publisher=self.api,
            analytics=NoAnalytics(),
            metrics=NullMetrics(),
            log=log,
            **runtime,
        )
        self.handler = chat.make_handler(self.runtime)

    def invoke(self, event: dict[str, Any]) -> None:
        self.handler(event, lambda_context(f"req-{uuid.uuid4().hex[:8]}"))

    def publish(
        self, sub: str, *payloads: Any, groups: list[str] | None = None, path: str | None = None
    ) -> list[dict[str, Any]]:
        """Invoke the handler with ``payloads`` published by ``sub``; the events that reached
        ``sub``'s outbound channel because of it."""
        mark = len(self.api.events(own_channel(sub)))
        self.invoke(
            appsync_event(
                "PUBLISH",
                path or f"/{INBOUND}/{sub}",
                cognito_identity(sub, groups),
                events=[{"id": f"evt-{i}", "payload": p} for i, p in enumerate(payloads)],
            )
        )
        return self.api.events(own_channel(sub))[mark:]


def own_channel(sub: str) -> str:
    return f"/{OUTBOUND}/{sub}"


def turns_of(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A channel's events split into turns, each ending at its terminal event."""
    turns: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for event in events:
        current.append(event)
        if event.get("type") in ("done", "error"):
            turns.append(current)
            current = []
    if current:
        turns.append(current)
    return turns


def new_sub() -> str:
    return str(uuid.uuid4())
