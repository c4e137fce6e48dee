"""The cost model: a design's whole AWS bill per million turns, model tokens aside, from list
prices and measured per-turn footprints.

A footprint is what one turn made AWS do: Event API operations and the subscriber's connection
minutes, DynamoDB request units, Firehose records, PutMetricData calls, log bytes (EMF metrics are
billed as logs), and the Lambda invocation's whole billed duration at the function's memory — the
seconds spent waiting on the model's stream included, as Lambda bills them. Every number in it
comes from a benchmark measurement; only the prices come from ``prices.json``, each with its source.
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
    lambda_seconds: float = 0.0  # the whole invocation, waiting on the model included
    lambda_invocations: int = 1
    connection_minutes: float = 0.0  # the subscriber's WebSocket, open while the turn streams


@dataclass(frozen=True)
class CostBreakdown:
    """USD per million turns, by line item; ``prices`` names the list price behind each line."""

    lines: dict[str, float] = field(default_factory=dict)
    prices: dict[str, str] = field(default_factory=dict)

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
        "AppSync Events connection minutes": footprint.connection_minutes
        * appsync["usd_per_million_connection_minutes"],
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
        "Lambda duration (whole invocation)": gb_seconds * MILLION * lam["usd_per_gb_second"],
        "Lambda requests": footprint.lambda_invocations * lam["usd_per_million_requests"],
    }
    return CostBreakdown(lines, price_basis(prices, memory_mb))


def price_basis(prices: dict[str, Any], memory_mb: int) -> dict[str, str]:
    """Each line's list price, as the report prints it beside the figure."""
    appsync = prices["appsync_events"]
    ddb = prices["dynamodb_on_demand"]
    firehose = prices["firehose"]
    cloudwatch = prices["cloudwatch"]
    lam = prices["lambda_arm64"]
    ssm = prices["ssm_parameter_store"]
    return {
        "AppSync Events operations": f"${appsync['usd_per_million_operations']:g} per million "
        f"operations (per {appsync['operation_payload_kb']} KB, in and out)",
        "AppSync Events connection minutes": f"${appsync['usd_per_million_connection_minutes']:g}"
        " per million connection minutes",
        "DynamoDB reads": f"${ddb['usd_per_million_read_request_units']:g} per million RRU",
        "DynamoDB writes": f"${ddb['usd_per_million_write_request_units']:g} per million WRU",
        "Firehose ingestion + Parquet": f"${firehose['usd_per_gb_ingested_direct_put']:g} + "
        f"${firehose['usd_per_gb_format_conversion']:g} per GB "
        f"({firehose['record_increment_kb']} KB records)",
        "CloudWatch PutMetricData": f"${cloudwatch['usd_per_thousand_putmetricdata_requests']:g}"
        " per 1,000 requests",
        "CloudWatch Logs (incl. EMF)": f"${cloudwatch['usd_per_gb_logs_ingested']:g} per GB",
        "SSM GetParameter": f"${ssm['usd_per_10k_api_interactions_standard_throughput']:g} per "
        "10,000 (standard throughput)",
        "Lambda duration (whole invocation)": f"${lam['usd_per_gb_second']:.10f}".rstrip("0")
        + " per GB-s (arm64)",
        "Lambda requests": f"${lam['usd_per_million_requests']:g} per million",
    }


def footprint_of(turn: dict[str, Any]) -> TurnFootprint:
    """A measured turn (a worker's record) as billable units: its invocation's billed duration,
    the subscriber connected for as long as the turn streamed."""
    requests = turn["aws_requests"]
    return TurnFootprint(
        published_event_bytes=tuple(turn["published_event_bytes"]),
        dynamodb_read_units=turn["read_units"],
        dynamodb_write_units=turn["write_units"],
        firehose_record_bytes=tuple(turn["firehose_record_bytes"]),
        putmetricdata_requests=sum(n for op, n in requests.items() if op.endswith("PutMetricData")),
        ssm_requests=sum(n for op, n in requests.items() if op.startswith("ssm:")),
        log_bytes=int(turn["log_bytes"]),
        lambda_seconds=turn["billed_ms"] / 1000,
        connection_minutes=turn["billed_ms"] / 60_000,
    )
