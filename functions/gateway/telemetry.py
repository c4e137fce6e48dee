"""What a turn leaves behind for operators: one analytics record and a set of EMF metrics.

:class:`TurnRecord` is the analytics schema (the Glue table describes exactly these columns).
The adapters — Firehose for records, Powertools EMF for metrics — import their libraries when
first used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.metrics import METRICS_NAMESPACE, Metric


@dataclass(frozen=True)
class TurnRecord:
    """One analytics record per turn (a JSON line in Firehose)."""

    turn_id: str
    conversation_id: str | None
    user_id: str
    tier: str | None
    model_id: str | None
    outcome: str  # "done" | "error"
    error_code: str | None
    cached: bool
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    latency_ms: int
    first_token_ms: int | None
    events_published: int
    ts: str
    #: Tokens the model reported beyond the reservation (not charged; the model still bills
    #: them): input_tokens + overrun_input_tokens is what the model counted.
    overrun_input_tokens: int = 0
    overrun_output_tokens: int = 0
    #: Model calls opened before admission and then cancelled, and their estimated input.
    speculative_cancelled: int = 0
    speculative_input_tokens: int = 0
    #: What the turn cost at list prices, in US dollars (0 for a model with no price).
    cost_usd: float = 0.0
    #: The door the turn came through (``events``: the chat channel; ``openai``: the
    #: OpenAI-compatible API), from ``TurnRequest.door``.
    door: str = "events"

    def to_json_line(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":")) + "\n"


@dataclass(frozen=True)
class TurnCounters:
    """Faults a turn survived, counted as metrics."""

    #: The model of every call that was throttled (a turn may fall back and succeed).
    throttled_models: tuple[str, ...] = ()
    usage_store_failures: int = 0
    analytics_failures: int = 0
    publish_failures: int = 0
    #: Publishes that went through only after retrying.
    publish_retries: int = 0


def record_timestamp(epoch: float) -> str:
    """``YYYY-MM-DD HH:MM:SS.fff`` in UTC (a Glue/Athena ``timestamp``)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class FirehoseAnalytics:
    """``PutRecord`` of one JSON line per turn."""

    def __init__(self, client: Callable[[], Any], stream_name: str) -> None:
        self._client = client
        self._stream = stream_name

    def record(self, record: TurnRecord) -> None:
        self._client().put_record(
            DeliveryStreamName=self._stream,
            Record={"Data": record.to_json_line().encode("utf-8")},
        )


class NoAnalytics:
    """Where no analytics stream is configured."""

    def record(self, record: TurnRecord) -> None:
        return None


class EmfTurnMetrics:
    """CloudWatch metrics of one turn as EMF blobs on stdout (no API calls).

    Each turn uses its own ``EphemeralMetrics``: Powertools' ``Metrics`` shares one metric set
    and one dimension set per process, which concurrent turns (the local runtime runs many in
    threads) would mix up — a ``modelId`` dimension must belong to its own turn's numbers.
    """

    def emit(self, record: TurnRecord, counters: TurnCounters) -> None:
        from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

        namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or METRICS_NAMESPACE

        if record.model_id:
            _emit_by_model(record, record.model_id, namespace)

        for model_id in sorted(set(counters.throttled_models)):
            throttles = EphemeralMetrics(namespace=namespace)
            throttles.add_dimension("modelId", model_id)
            throttles.add_metric(
                Metric.MODEL_THROTTLES, MetricUnit.Count, counters.throttled_models.count(model_id)
            )
            throttles.flush_metrics()

        if record.error_code:
            errors = EphemeralMetrics(namespace=namespace)
            errors.add_dimension("code", record.error_code)
            errors.add_metric(Metric.ERRORS, MetricUnit.Count, 1)
            errors.flush_metrics()

        _emit_by_door(namespace, record)

        faults = EphemeralMetrics(namespace=namespace)
        if counters.analytics_failures:
            faults.add_metric(
                Metric.ANALYTICS_FAILURES, MetricUnit.Count, counters.analytics_failures
            )
        if counters.usage_store_failures:
            faults.add_metric(
                Metric.USAGE_STORE_FAILURES, MetricUnit.Count, counters.usage_store_failures
            )
        if counters.publish_failures:
            faults.add_metric(Metric.PUBLISH_FAILURES, MetricUnit.Count, counters.publish_failures)
        if counters.publish_retries:
            faults.add_metric(Metric.PUBLISH_RETRIES, MetricUnit.Count, counters.publish_retries)
        if faults.metric_set:
            faults.flush_metrics()


def _emit_by_model(record: TurnRecord, model_id: str, namespace: str) -> None:
    """The turn's metrics that carry its model as a dimension."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    by_model = EphemeralMetrics(namespace=namespace)
    by_model.add_dimension("modelId", model_id)
    if record.outcome == "done" or record.input_tokens or record.output_tokens:
        by_model.add_metric(Metric.INPUT_TOKENS, MetricUnit.Count, record.input_tokens)
        by_model.add_metric(Metric.OUTPUT_TOKENS, MetricUnit.Count, record.output_tokens)
        by_model.add_metric(Metric.TURN_LATENCY, MetricUnit.Milliseconds, record.latency_ms)
    if record.first_token_ms is not None:
        by_model.add_metric(
            Metric.FIRST_TOKEN_LATENCY, MetricUnit.Milliseconds, record.first_token_ms
        )
    if record.cached:
        by_model.add_metric(Metric.CACHE_HITS, MetricUnit.Count, 1)
    if record.cost_usd:
        by_model.add_metric(Metric.COST_USD, MetricUnit.NoUnit, record.cost_usd)
    overrun = record.overrun_input_tokens + record.overrun_output_tokens
    if overrun:
        by_model.add_metric(Metric.METERING_OVERRUN_TOKENS, MetricUnit.Count, overrun)
    if record.speculative_cancelled:
        by_model.add_metric(
            Metric.SPECULATIVE_CALLS_CANCELLED,
            MetricUnit.Count,
            record.speculative_cancelled,
        )
        by_model.add_metric(
            Metric.SPECULATIVE_INPUT_TOKENS,
            MetricUnit.Count,
            record.speculative_input_tokens,
        )
    if by_model.metric_set:
        by_model.flush_metrics()


def _emit_by_door(namespace: str, record: TurnRecord) -> None:
    """The turn's count, tokens, latencies and error under the ``door`` dimension alone, so
    the doors compare side by side (the ``modelId`` and ``code`` sets above stay as they are:
    the dashboard and alarms read them)."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    by_door = EphemeralMetrics(namespace=namespace)
    by_door.add_dimension("door", record.door or "events")
    by_door.add_metric(Metric.TURNS, MetricUnit.Count, 1)
    if record.error_code:
        by_door.add_metric(Metric.ERRORS, MetricUnit.Count, 1)
    if record.outcome == "done" or record.input_tokens or record.output_tokens:
        by_door.add_metric(Metric.INPUT_TOKENS, MetricUnit.Count, record.input_tokens)
        by_door.add_metric(Metric.OUTPUT_TOKENS, MetricUnit.Count, record.output_tokens)
        by_door.add_metric(Metric.TURN_LATENCY, MetricUnit.Milliseconds, record.latency_ms)
    if record.first_token_ms is not None:
        by_door.add_metric(
            Metric.FIRST_TOKEN_LATENCY, MetricUnit.Milliseconds, record.first_token_ms
        )
    by_door.flush_metrics()
