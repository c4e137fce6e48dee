"""The OpenAI-compatible door on the benchmark stage, beside the Events door: time added to the
model's first token, AWS requests per turn and the whole bill per million turns with the door's
own front-door prices (API Gateway's REST API instead of AppSync Events).

The door's function runs in a worker of its own (:mod:`bench.door_worker`) under the CPU share of
its memory size, on the same stage, tables and fake Bedrock as the chat function, for the same
user with a day of usage."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

from bench import cgroups, cost
from bench.turns import (
    AWS_LATENCY_MS,
    COLD,
    PACED_LABEL,
    TTFT0,
    TTFT300,
    Run,
    plan,
    spawn_worker,
)

#: A representative value of each variable the access log format names, to size one line.
_ACCESS_LOG_EXAMPLE = {
    "$context.requestId": "0f1e2d3c-4b5a-4697-8877-665544332211",
    "$context.extendedRequestId": "Abc1DEfGhIJKlmN=",
    "$context.requestTime": "05/Dec/2026:05:30:00 +0000",
    "$context.httpMethod": "POST",
    "$context.resourcePath": "/v1/chat/completions",
    "$context.status": "200",
    "$context.responseLength": "61234",
    "$context.identity.sourceIp": "203.0.113.10",
    "$context.authorizer.claims.sub": "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "$context.authorizer.claims.client_id": "3n4b5c6d7e8f9g0h1i2j3k4l5m",
    "$context.integrationLatency": "10512",
    "$context.integration.status": "200",
    "$context.wafResponseCode": "WAF_ALLOW",
    "$context.error.message": "-",
}


@dataclass
class DoorBenchmark(Run):
    """The door's worker (design ``openai``): its memory size, whether it ran under that size's
    CPU share, its turns as measured, and one access log line's size."""

    emulated: bool = False
    access_log_bytes: int = 0

    def requests_per_turn(self, label: str) -> int:
        return max(sum(t["aws_requests"].values()) for t in self.of(label))


def door_memory_mb() -> int:
    """The door function's memory as the dev stack declares it (the program gives it the chat
    function's size, ``chatMemoryMb``)."""
    from local.stack import load_stack

    return load_stack("dev").chat_memory_mb


def access_log_line_bytes() -> int:
    """One access log line as API Gateway writes it with the stack's format, at representative
    values (the stage's access log is CloudWatch Logs ingestion, billed per GB)."""
    from components.openai_api import ACCESS_LOG_FORMAT

    line = ACCESS_LOG_FORMAT
    for variable in sorted(_ACCESS_LOG_EXAMPLE, key=len, reverse=True):
        line = line.replace(variable, _ACCESS_LOG_EXAMPLE[variable])
    return len(line.encode()) + 1


def run(*, warm: int, paced: int, emulate: bool, log: Any = print) -> DoorBenchmark:
    """Measure the door: a cold turn, a warm-up, ``warm`` full-speed turns alternating a 300 ms
    and a 0 ms model, and ``paced`` turns at 50 tokens/s."""
    from bench.gateway_scenario import BENCH_TIER, create_gateway
    from bench.harness import RemoteStage
    from local.stack import load_stack

    memory = door_memory_mb()
    stage = RemoteStage().start()
    try:
        env = stage.environment()
        os.environ.update({k: v for k, v in env.items() if v is not None})
        stage.client.set_latency(AWS_LATENCY_MS)
        gateway = create_gateway(stage.moto_url, stage.urls["publish_url"])
        model = load_stack("dev").tier_config.tiers[BENCH_TIER].default_model
        job = {
            "urls": stage.urls,
            "latency_ms": AWS_LATENCY_MS,
            "sub": gateway["sub"],
            "tier": gateway["tier"],
            "design": "openai",
            "model": model,
            "turns": plan(warm, paced),
        }
        run_env = {**env, **gateway["env"], "POWERTOOLS_SERVICE_NAME": "openai"}
        found = cgroups.available() if emulate else "turned off"
        share = cgroups.create(memory) if not isinstance(found, str) else None
        log(f"  openai door at {memory} MB's CPU share" if share else "  openai door, whole CPU")
        try:
            turns = _run_worker(job, run_env, share, log)
        finally:
            if share:
                share.remove()
    finally:
        stage.stop()
    return DoorBenchmark(
        "openai",
        memory,
        None,
        turns,
        emulated=share is not None,
        access_log_bytes=access_log_line_bytes(),
    )


def _run_worker(
    job: dict[str, Any], env: dict[str, str | None], share: cgroups.CpuShare | None, log: Any
) -> list[dict[str, Any]]:
    turns = spawn_worker("bench.door_worker", job, env, share, log)
    bad = [t for t in turns if t["status"] != 200 or t["time_added_ms"] != t["time_added_ms"]]
    if bad:
        raise RuntimeError(f"the door streamed no answer text in {len(bad)} turns: {bad[0]}")
    return turns


def footprint(turn: dict[str, Any], access_log_bytes: int) -> cost.TurnFootprint:
    """A door turn as billable units: no Event API operations or connection minutes; the
    function's logs plus the stage's access log line."""
    requests = turn["aws_requests"]
    return cost.TurnFootprint(
        published_event_bytes=(),
        inbound_publishes=0,
        dynamodb_read_units=turn["read_units"],
        dynamodb_write_units=turn["write_units"],
        firehose_record_bytes=tuple(turn["firehose_record_bytes"]),
        putmetricdata_requests=sum(n for op, n in requests.items() if op.endswith("PutMetricData")),
        ssm_requests=sum(n for op, n in requests.items() if op.startswith("ssm:")),
        log_bytes=int(turn["log_bytes"]) + access_log_bytes,
        lambda_seconds=turn["billed_ms"] / 1000,
    )


def bill(turn: dict[str, Any], door: DoorBenchmark, prices: dict[str, Any]) -> cost.CostBreakdown:
    """The door's whole bill per million turns: the shared lines priced as the Events door's, the
    Event API's lines replaced by API Gateway's REST API requests (a streamed response counts one
    request per 10 MB started)."""
    base = cost.cost_per_million_turns(
        footprint(turn, door.access_log_bytes), prices, door.memory_mb
    )
    rest = prices["api_gateway_rest"]
    increments = max(1, math.ceil(turn["response_bytes"] / (rest["stream_increment_mb"] * 1024**2)))
    lines = {
        "API Gateway REST API requests": increments * rest["usd_per_million_requests"],
        **{k: v for k, v in base.lines.items() if not k.startswith("AppSync")},
    }
    basis = {
        "API Gateway REST API requests": f"${rest['usd_per_million_requests']:g} per million "
        f"requests (a stream: one per {rest['stream_increment_mb']} MB)",
        **{k: v for k, v in base.prices.items() if not k.startswith("AppSync")},
    }
    return replace(base, lines=lines, prices=basis)


def section(results: Any) -> list[str]:
    """BENCHMARKS.md's section on the door: its figures beside the Events door's, and its bill."""
    from bench import figures
    from bench.report import _n
    from bench.turns import FULL, PACED

    door: DoorBenchmark = results.door
    b, prices = results.bench, results.prices
    events = b.gateway
    events_paced = b.by_cadence.get(b.gateway_flush_ms) or events
    events_memory = results.gateway_memory
    door_paced = bill(door.middle(PACED_LABEL), door, prices)
    door_full = bill(door.middle(TTFT300), door, prices)

    def requests(run_turns: list[dict[str, Any]]) -> int:
        return max(sum(t["aws_requests"].values()) for t in run_turns)

    rows = [
        (
            f"time added to the first token, {300:g} ms model (ms)",
            _n(events.median(TTFT300, "time_added_ms"), 1),
            _n(door.median(TTFT300, "time_added_ms"), 1),
        ),
        (
            "time added to the first token, 0 ms model (ms)",
            _n(events.median(TTFT0, "time_added_ms"), 1),
            _n(door.median(TTFT0, "time_added_ms"), 1),
        ),
        (
            "AWS requests per warm turn (publishes aside)",
            str(requests(events.of(TTFT300))),
            str(door.requests_per_turn(TTFT300)),
        ),
        (
            "AWS requests before the first delta",
            str(max(t["aws_before_first_delta"] for t in events.of(TTFT300))),
            str(max(t["aws_before_first_delta"] for t in door.of(TTFT300))),
        ),
        (
            "AWS requests, cold turn",
            str(requests(events.of(COLD))),
            str(door.requests_per_turn(COLD)),
        ),
        (
            "CPU per warm turn (ms)",
            _n(events.median(TTFT300, "cpu_ms"), 1),
            _n(door.median(TTFT300, "cpu_ms"), 1),
        ),
        (
            "billed duration at 50 tokens/s (ms)",
            _n(events_paced.median(PACED_LABEL, "billed_ms")),
            _n(door.median(PACED_LABEL, "billed_ms")),
        ),
        (
            "whole bill per million turns, 50 tokens/s",
            f"${figures.bill(events_paced, PACED, prices, events_memory).total:,.2f}",
            f"${door_paced.total:,.2f}",
        ),
        (
            "whole bill per million turns, full speed",
            f"${figures.bill(events, FULL, prices, events_memory).total:,.2f}",
            f"${door_full.total:,.2f}",
        ),
    ]
    out = [
        "## The OpenAI-compatible door beside the Events door",
        "",
        f"| per 512-token turn | Events door ({events_memory} MB) | "
        f"OpenAI door, `/v1` ({door.memory_mb} MB) |",
        "|---|---:|---:|",
    ]
    out += [f"| {name} | {a} | {b_} |" for name, a, b_ in rows]
    out += [
        "",
        "| door, USD per million turns | list price | 50 tokens/s | full speed |",
        "|---|---|---:|---:|",
    ]
    for line, value in door_paced.lines.items():
        out.append(
            f"| {line} | {door_paced.prices[line]} | {_n(value, 2)} | "
            f"{_n(door_full.lines[line], 2)} |"
        )
    out.append(f"| **total** | | **{_n(door_paced.total, 2)}** | **{_n(door_full.total, 2)}** |")
    where = f"under {door.memory_mb} MB's CPU share" if door.emulated else "on the whole CPU"
    out += [
        "",
        "The door's function runs its real HTTP server (`functions/openai_http.py`) in a worker "
        f"{where}, on the same stage, tables, user and fake model as the chat function; the "
        "worker plays the Lambda Web Adapter's part, sending each turn as one streamed "
        "`POST /v1/chat/completions` with the authorizer's claims in `x-amzn-request-context`. "
        "*Time added* is the first server-sent event with answer text, as read, less the "
        "start, the model's time to first token and moto's excess, as for the Events door. "
        "Neither door's managed front (AppSync Events' delivery, API Gateway and the adapter) "
        "is in these times: they run in AWS, not here. The door's bill replaces the Event API's "
        "operations and connection minutes with API Gateway REST API requests "
        f"({prices['api_gateway_rest']['source']}; a streamed response is billed one request "
        f"per {prices['api_gateway_rest']['stream_increment_mb']} MB started), adds one access "
        f"log line per request ({door.access_log_bytes} bytes in the stack's format) to the "
        "logs, and prices the rest as the Events door's. Lambda bills streamed bytes only past "
        "the first 6 MB of a response, so a chat answer adds nothing there; the prod stack's "
        "WAF and data transfer are left out of both doors.",
        "",
    ]
    return out
