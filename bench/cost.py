"""The cost model: the gateway's own AWS cost per million turns, from list prices and measured
per-turn footprints.

A footprint is what one turn made AWS do besides running the model: Event API operations, DynamoDB
request units, Firehose records, PutMetricData calls, log bytes (EMF metrics are billed as logs)
and Lambda time spent on the gateway's own work. Every number in it comes from a benchmark
measurement; only the prices come from ``prices.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
MILLION = 1_000_000


@dataclass(frozen=True)
class TurnFootprint:
    """What one turn costs in billable units, measured."""

    published_event_bytes: tuple[int, ...]  # size of each event the function published
    subscribers: int = 1  # each published event is delivered to this many subscriptions
    inbound_publishes: int = 1  # the user's own publish of the turn
    dynamodb_read_units: float = 0.0
    dynamodb_write_units: float = 0.0
    firehose_record_bytes: tuple[int, ...] = ()
    putmetricdata_requests: int = 0
    ssm_requests: int = 0
    log_bytes: int = 0
    lambda_seconds: float = 0.0  # the function's own work, model time excluded
    lambda_invocations: int = 1


@dataclass(frozen=True)
class CostBreakdown:
    """USD per million turns, by line item."""

    lines: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.lines.values())


def load_prices(path: Path = PRICES_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())


def appsync_operations(footprint: TurnFootprint, prices: dict[str, Any]) -> float:
    """Event API operations of one turn: each published event in, and out to each subscriber,
    in 5 KB increments; plus the user's publish of the turn (in, and the handler delivery)."""
    increment = prices["appsync_events"]["operation_payload_kb"] * 1024
    per_event = [max(1, math.ceil(size / increment)) for size in footprint.published_event_bytes]
    return sum(per_event) * (1 + footprint.subscribers) + 2 * footprint.inbound_publishes


def cost_per_million_turns(
    footprint: TurnFootprint, prices: dict[str, Any], memory_mb: int
) -> CostBreakdown:
    """The footprint priced at list prices, per million turns."""
    appsync = prices["appsync_events"]
    ddb = prices["dynamodb_on_demand"]
    firehose = prices["firehose"]
    cloudwatch = prices["cloudwatch"]
    lam = prices["lambda_arm64"]
    ssm = prices["ssm_parameter_store"]

    firehose_increment = firehose["record_increment_kb"] * 1024
    firehose_gb = (
        sum(
            max(1, math.ceil(size / firehose_increment)) * firehose_increment
            for size in footprint.firehose_record_bytes
        )
        / 1024**3
    )
    gb_seconds = footprint.lambda_seconds * memory_mb / 1024

    lines = {
        "AppSync Events operations": appsync_operations(footprint, prices)
        * appsync["usd_per_million_operations"],
        "DynamoDB reads": footprint.dynamodb_read_units * ddb["usd_per_million_read_request_units"],
        "DynamoDB writes": footprint.dynamodb_write_units
        * ddb["usd_per_million_write_request_units"],
        "Firehose ingestion + Parquet": firehose_gb
        * MILLION
        * (firehose["usd_per_gb_ingested_direct_put"] + firehose["usd_per_gb_format_conversion"]),
        "CloudWatch PutMetricData": footprint.putmetricdata_requests
        * 1000
        * cloudwatch["usd_per_thousand_putmetricdata_requests"],
        "CloudWatch Logs (incl. EMF)": footprint.log_bytes
        / 1024**3
        * MILLION
        * cloudwatch["usd_per_gb_logs_ingested"],
        "SSM GetParameter": footprint.ssm_requests
        * 100
        * ssm["usd_per_10k_api_interactions_standard_throughput"],
        "Lambda duration (own work)": gb_seconds * MILLION * lam["usd_per_gb_second"],
        "Lambda requests": footprint.lambda_invocations * lam["usd_per_million_requests"],
    }
    return CostBreakdown(lines)
