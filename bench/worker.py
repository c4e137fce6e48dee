"""``python -m bench.worker``: one design's function, warm across turns like a Lambda execution
environment, measured turn by turn in a process of its own (which the benchmark may place in a
CPU-limited cgroup to emulate a memory size).

It reads a job (JSON) on standard input, imports the design's handler through its public entry
point — the gateway's ``chat.handler``, the reference's ``lambda_handler`` — with the environment
its parent set, runs the job's turns against the stage and prints one JSON line per turn.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from bench.harness import StageClient
from local.auth import AuthMode, Caller
from local.channels import Channel
from local.handlers import LambdaContext, appsync_event

#: Marks the worker's result lines: the function's own log lines share standard output.
RESULT = "bench-turn "


@dataclass
class TurnMeasurement:
    """Everything one turn did, as the stage's endpoints and the process saw it."""

    design: str
    label: str
    ttft_ms: float  # the model's own time to first token, as the fake model sent it
    time_added_ms: float  # in region: first delta at the Events endpoint, less start, less ttft
    time_added_moto_ms: float  # the same as measured, moto's slowness included
    model_called_ms: float  # from the invocation's start to the model request's arrival
    first_delta_ms: float  # from the invocation's start to the first delta's arrival
    wall_ms: float  # the invocation, handler call to return, as measured
    billed_ms: float  # in region: wall less moto's excess on the function's path
    cpu_ms: float  # CPU time of the function's process during the invocation (all threads)
    model_ms: float  # from the model call's arrival to its last byte
    events_published: int
    publish_requests: int
    connections_opened: int
    connections_used: int
    aws_requests: dict[str, int]
    aws_before_first_delta: int
    read_units: float
    write_units: float
    firehose_record_bytes: list[int]
    published_event_bytes: list[int]
    log_bytes: int
    last_event: str
    max_rss_mb: float  # the process's peak resident memory so far (what must fit the memory size)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def captured_stdout() -> Iterator[list[bytes]]:
    """Capture fd 1 (Powertools' loggers hold their own reference to the stream), yielding a
    list that holds the captured bytes once the block ends: the function's log output."""
    out: list[bytes] = []
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield out
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read())


# -- the two designs, each through its public entry point ------------------------------------
def import_path(job: dict[str, Any]) -> list[str]:
    """The worker's ``PYTHONPATH`` for ``job``, ahead of the repository (which has ``bench``):
    nothing more for the gateway, whose ``chat`` the project's install provides; for the
    reference, its pinned requests first, then its own package, as its Lambda bundle has them."""
    if job["design"] == "gateway":
        return []
    return [job["site"], job["code"]]


def _gateway(job: dict[str, Any]) -> tuple[Callable, Callable[[str], dict], Callable[[Any], bool]]:
    chat = importlib.import_module("chat")
    sub, inbound, tier = job["sub"], job["inbound_namespace"], job["tier"]

    channel = Channel(path=f"/{inbound}/{sub}", segments=(inbound, sub))
    caller = Caller(
        AuthMode.COGNITO,
        {"sub": sub, "username": "bench", "groups": [tier], "claims": {"sub": sub}},
    )

    def event(text: str) -> dict[str, Any]:
        """An onPublish invocation as AppSync Events delivers it (EVENT mode)."""
        payload = {
            "conversationId": "c-bench",
            "turnId": f"t-{uuid.uuid4().hex[:12]}",
            "messages": [{"role": "user", "content": [{"text": text}]}],
        }
        return appsync_event(
            "PUBLISH", channel, caller, {}, [{"id": str(uuid.uuid4()), "payload": payload}]
        )

    def is_delta(payload: Any) -> bool:
        return isinstance(payload, dict) and payload.get("type") == "delta"

    return chat.handler, event, is_delta


def _reference(
    job: dict[str, Any],
) -> tuple[Callable, Callable[[str], dict], Callable[[Any], bool]]:
    module_name, _, function = job["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module_name), function)
    sub = job["sub"]
    if job.get("seed"):
        _seed_reference_user(job)

    def event(text: str) -> dict[str, Any]:
        # Its frontend publishes the conversation as a JSON string, which the handler parses.
        payload = {
            "conversationId": "c-bench",
            "messages": [{"role": "user", "content": [{"text": text}]}],
        }
        return {
            "identity": {"sub": sub, "username": "bench"},
            "info": {
                "channel": {
                    "path": f"/Inbound-Messages/{sub}",
                    "segments": ["Inbound-Messages", sub],
                },
                "channelNamespace": {"name": "Inbound-Messages"},
                "operation": "PUBLISH",
            },
            "events": [{"id": str(uuid.uuid4()), "payload": json.dumps(payload)}],
        }

    def is_delta(payload: Any) -> bool:
        return isinstance(payload, dict) and "contentBlockDelta" in payload

    return handler, event, is_delta


def _seed_reference_user(job: dict[str, Any]) -> None:
    """A user who chatted in every 10-minute bucket of the last day, written with the reference's
    own period keys (its ``create_ten_minute_period``), so its daily range query reads 144 items."""
    import datetime

    import boto3

    token_meter = importlib.import_module("eventhandlers.token_meter")
    period = token_meter.create_ten_minute_period()
    partition, sort = job["usage_keys"]
    now = period["round_time"](datetime.datetime.now())
    client = boto3.client("dynamodb")
    for k in range(1, 144):
        when = now - datetime.timedelta(minutes=10 * k)
        client.put_item(
            TableName=job["usage_table"],
            Item={
                partition: {"S": job["sub"]},
                sort: {"S": period["id_format"](when)},
                "input_tokens": {"N": "40"},
                "output_tokens": {"N": "300"},
                "timestamp": {"N": str(int(when.timestamp()))},
                "ttl": {"N": str(int((when + datetime.timedelta(days=1)).timestamp()))},
            },
        )


# -- measuring --------------------------------------------------------------------------------
def measure(
    job: dict[str, Any],
    turn: dict[str, Any],
    stage: StageClient,
    handler: Callable,
    event: dict[str, Any],
    is_delta: Callable[[Any], bool],
) -> TurnMeasurement:
    sink, latency = job["sink"], job["latency_ms"] / 1000
    stage.configure_model(
        ttft_ms=turn["ttft_ms"],
        tokens_per_second=turn["tokens_per_second"],
        tokens=turn.get("tokens", 512),
    )
    before = stage.sink_state(sink, since=1 << 62)
    aws_before = stage.aws_usage()
    model_before = stage.model_calls(since=1 << 62)["count"]
    context = LambdaContext(job["function_name"], memory_limit_in_mb=job["memory_mb"])
    cpu_before = time.process_time()
    with captured_stdout() as logs:
        started = time.perf_counter()
        handler(event, context)
        ended = time.perf_counter()
    cpu = time.process_time() - cpu_before
    after = stage.sink_state(sink, since=before["event_count"])
    aws = stage.aws_usage().minus(aws_before)
    calls = stage.model_calls(since=model_before)["calls"]
    published = after["events"]  # [channel, payload, connection, received_at]
    first = next((e for e in published if is_delta(e[1])), None)
    ttft = (calls[0]["first_token"] - calls[0]["received"]) if calls else 0.0
    first_at = first[3] if first else float("nan")
    # moto is slower than DynamoDB (tens of ms for a large item): each request's time beyond
    # the injected latency is moto's excess. Where the function waited on it, take it out.
    # (The meter holds the injected latency after moto answers, so moto's part comes first.)
    excess = [(start, start + max(0.0, end - start - latency)) for _, start, end in aws.calls]
    model_window = (calls[0]["received"], calls[0]["first_token"]) if calls else (started, started)
    to_first = on_path(excess, started, first_at if first else ended, model_window)
    to_end = on_path(excess, started, ended, model_window)
    last = published[-1][1] if published else {}
    return TurnMeasurement(
        design=job["design"],
        label=turn["label"],
        ttft_ms=ttft * 1000,
        time_added_ms=(first_at - started - ttft - to_first) * 1000,
        time_added_moto_ms=(first_at - started - ttft) * 1000,
        model_called_ms=(calls[0]["received"] - started) * 1000 if calls else float("nan"),
        first_delta_ms=(first_at - started) * 1000,
        wall_ms=(ended - started) * 1000,
        billed_ms=(ended - started - to_end) * 1000,
        cpu_ms=cpu * 1000,
        model_ms=sum(c["finished"] - c["received"] for c in calls) * 1000,
        events_published=len(published),
        publish_requests=after["requests"] - before["requests"],
        connections_opened=after["connections"] - before["connections"],
        connections_used=len({e[2] for e in published}),
        aws_requests=dict(aws.requests),
        aws_before_first_delta=aws.requests_before(first_at) if first else 0,
        read_units=aws.read_units,
        write_units=aws.write_units,
        firehose_record_bytes=list(aws.firehose_records),
        published_event_bytes=[len(json.dumps(e[1])) for e in published],
        log_bytes=len(logs[0]) if logs else 0,
        max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        last_event=str(last.get("type") or next(iter(last), "")) if isinstance(last, dict) else "",
    )


def on_path(
    regions: list[tuple[float, float]], start: float, end: float, hidden: tuple[float, float]
) -> float:
    """Seconds of the union of ``regions`` inside [start, end] but outside ``hidden`` (the
    model's time to first token, which the function would have waited for anyway)."""
    pieces: list[tuple[float, float]] = []
    for a, b in sorted(regions):
        for lo, hi in ((start, hidden[0]), (hidden[1], end)):
            x, y = max(a, lo), min(b, hi)
            if y > x:
                pieces.append((x, y))
    total, reach = 0.0, float("-inf")
    for a, b in sorted(pieces):
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total


def main() -> None:
    job = json.loads(sys.stdin.read())
    stage = StageClient(job["urls"])
    build = _gateway if job["design"] == "gateway" else _reference
    handler, event, is_delta = build(job)
    restored: dict[str, Any] = {}
    if job.get("snapstart"):
        from bench.cold_path import emulate_snapstart

        restored = emulate_snapstart(stage, job["latency_ms"] / 1000)
    for turn in job["turns"]:
        measured = measure(job, turn, stage, handler, event(turn.get("text", "Hello")), is_delta)
        # The restore (when emulated) belongs to the first turn: the one a user waits on.
        print(RESULT + json.dumps({**measured.to_json(), **restored}), flush=True)
        restored = {}
    stage.close()


if __name__ == "__main__":
    main()
