"""X-Ray tracing is built only where Powertools would record it."""

from __future__ import annotations

import pytest
from gateway.tracing import LazyTracer, tracing_enabled


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
        ({}, False),  # outside Lambda: the local runtime, tests, benchmarks
    ],
)
def test_tracing_is_on_only_in_lambda_and_not_disabled(environ, enabled):
    assert tracing_enabled(environ) is enabled


def test_an_untraced_handler_is_called_as_it_is(monkeypatch):
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    tracer = LazyTracer()
    calls = []

    @tracer.capture_lambda_handler
    def handler(event, context):
        calls.append((event, context))
        return "answer"

    assert handler({"e": 1}, "ctx") == "answer"
    assert calls == [({"e": 1}, "ctx")]
    assert tracer.tracer is None
    tracer.put_annotation("tier", "free")  # a no-op without a tracer
