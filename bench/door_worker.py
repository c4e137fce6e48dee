"""``python -m bench.door_worker``: the OpenAI-compatible door's function, warm across turns, in a
process of its own (which the benchmark may place in a CPU-limited cgroup).

It starts the door's real HTTP server (``functions/openai_http.py``, what the Lambda Web Adapter
forwards API Gateway's requests to) on a free loopback port and plays the adapter's part: each
turn is one ``POST /v1/chat/completions`` with ``stream: true`` and API Gateway's request context
(the authorizer's claims) in the ``x-amzn-request-context`` header, read as the server streams
it. The *first delta* is the first server-sent event carrying answer text, as it reaches the
reader. Everything else is measured as :mod:`bench.worker` measures the chat function.
"""

from __future__ import annotations

import http.client
import json
import resource
import sys
import threading
import time
import uuid
from typing import Any

from bench.harness import StageClient
from bench.worker import RESULT, captured_stdout, on_path


def _has_text(line: bytes) -> bool:
    """Whether an SSE line is a chunk with answer text in it."""
    if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
        return False
    try:
        chunk = json.loads(line[len(b"data: ") :])
    except ValueError:
        return False
    choices = chunk.get("choices") or []
    return any((c.get("delta") or {}).get("content") for c in choices)


def _context(job: dict[str, Any]) -> str:
    """API Gateway's request context as the adapter forwards it: a REST API's Cognito authorizer
    passes every claim as a string (``cognito:groups`` included)."""
    claims = {
        "sub": job["sub"],
        "username": "bench",
        "cognito:groups": job["tier"],
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
    }
    return json.dumps({"requestId": str(uuid.uuid4()), "authorizer": {"claims": claims}})


def measure(job: dict[str, Any], turn: dict[str, Any], stage: StageClient, port: int) -> dict:
    latency = job["latency_ms"] / 1000
    stage.configure_model(
        ttft_ms=turn["ttft_ms"],
        tokens_per_second=turn["tokens_per_second"],
        tokens=turn.get("tokens", 512),
    )
    aws_before = stage.aws_usage()
    model_before = stage.model_calls(since=1 << 62)["count"]
    body = json.dumps(
        {
            "model": job["model"],
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": turn.get("text", "Hello")}],
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "x-amzn-request-context": _context(job),
    }
    first_at = float("nan")
    response_bytes = 0
    status = 0
    cpu_before = time.process_time()
    with captured_stdout() as logs:
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.request("POST", "/v1/chat/completions", body, headers)
        response = connection.getresponse()
        status = response.status
        while line := response.readline():
            response_bytes += len(line)
            if first_at != first_at and _has_text(line):
                first_at = time.perf_counter()
        ended = time.perf_counter()
        connection.close()
    cpu = time.process_time() - cpu_before
    aws = stage.aws_usage().minus(aws_before)
    calls = stage.model_calls(since=model_before)["calls"]
    ttft = (calls[0]["first_token"] - calls[0]["received"]) if calls else 0.0
    excess = [(start, start + max(0.0, end - start - latency)) for _, start, end in aws.calls]
    model_window = (calls[0]["received"], calls[0]["first_token"]) if calls else (started, started)
    found = first_at == first_at
    to_first = on_path(excess, started, first_at if found else ended, model_window)
    to_end = on_path(excess, started, ended, model_window)
    return {
        "design": "openai",
        "label": turn["label"],
        "status": status,
        "ttft_ms": ttft * 1000,
        "time_added_ms": (first_at - started - ttft - to_first) * 1000,
        "time_added_moto_ms": (first_at - started - ttft) * 1000,
        "wall_ms": (ended - started) * 1000,
        "billed_ms": (ended - started - to_end) * 1000,
        "cpu_ms": cpu * 1000,
        "response_bytes": response_bytes,
        "aws_requests": dict(aws.requests),
        "aws_before_first_delta": aws.requests_before(first_at) if found else 0,
        "read_units": aws.read_units,
        "write_units": aws.write_units,
        "firehose_record_bytes": list(aws.firehose_records),
        "log_bytes": len(logs[0]) if logs else 0,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    job = json.loads(sys.stdin.read())
    stage = StageClient(job["urls"])
    import openai_http  # the door function's entry module, as the adapter runs it

    server = openai_http.serve(port=0)
    threading.Thread(target=server.serve_forever, name="door-server", daemon=True).start()
    port = server.server_address[1]
    for turn in job["turns"]:
        print(RESULT + json.dumps(measure(job, turn, stage, port)), flush=True)
    server.shutdown()
    stage.close()


if __name__ == "__main__":
    main()
