"""Fixtures of the function tests: clean Powertools caches, fake AWS credentials, moto, a
recording events endpoint, and the chat gateway over them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.functions.support import (
    CountingCalls,
    Gateway,
    RecordedAnalytics,
    RecordingEndpoint,
    ScriptedModel,
    create_tables,
    function_environment,
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and a region for boto3; no real endpoint override leaks in; fresh
    Powertools parameter and metric caches for every test."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "AiGateway")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ai-gateway")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    parameters.clear_caches()
    DEFAULT_PROVIDERS.clear()  # its SSM client must belong to this test's moto
    Metrics().clear_metrics()
    yield
    parameters.clear_caches()
    DEFAULT_PROVIDERS.clear()
    Metrics().clear_metrics()


@pytest.fixture
def aws() -> Iterator[Any]:
    """Moto, in process, for every AWS service the functions use."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def endpoint() -> Iterator[RecordingEndpoint]:
    recording = RecordingEndpoint()
    try:
        yield recording
    finally:
        recording.close()


@pytest.fixture
def gateway(aws: None, endpoint: RecordingEndpoint) -> Iterator[Gateway]:
    """The chat handler's runtime over moto's tables, the recording endpoint and a scripted
    model, as a test drives it (``gateway.run(chat_payload())``)."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_tables(client)
    env = function_environment(events_http_endpoint=endpoint.url)
    calls = CountingCalls(client)
    yield Gateway(endpoint, client, calls, ScriptedModel(), RecordedAnalytics(), env)
