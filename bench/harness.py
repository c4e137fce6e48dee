"""The benchmark's stage: moto behind a counting endpoint, a recording publish endpoint, and the
measurement of one turn (counts, first-delta time, own time, log bytes)."""

from __future__ import annotations

import http.client
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.aws_meter import AwsMeter, AwsUsage
from bench.publish_sink import PublishedEvent, PublishSink

REGION = "us-east-1"
ACCESS_KEY_ID = "AKIABENCHMARK0000001"
SECRET_ACCESS_KEY = "benchmark-secret-key-not-a-secret"


@dataclass
class Stage:
    """moto in server mode on loopback, metered, and a publish sink; env set for boto3."""

    aws_url: str = ""
    moto_url: str = ""
    publish_url: str = ""
    meter: AwsMeter | None = None
    sink: PublishSink = field(default_factory=PublishSink)
    _moto: Any = None
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    def start(self) -> Stage:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        self.meter = AwsMeter(self.moto_url)
        self.aws_url = self.meter.start()
        self.publish_url = self.sink.start()
        self.set_env(**_aws_environment(self.aws_url, self.publish_url))
        return self

    def set_env(self, **values: str | None) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def stop(self) -> None:
        self.sink.stop()
        if self.meter:
            self.meter.stop()
        if self._moto:
            self._moto.stop()
        self.restore_env()

    def restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    # -- what measure_turn reads -------------------------------------------------------------
    def sink_state(self, since: int = 0) -> dict[str, Any]:
        return self.sink.state(since)

    def aws_usage(self) -> AwsUsage:
        assert self.meter is not None
        return self.meter.snapshot()


class RemoteStage(Stage):
    """The same stage served by ``python -m bench.stage_server`` in a child process; read and
    controlled over one kept-alive loopback connection per server."""

    def start(self) -> RemoteStage:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.stage_server"],
            cwd=Path(__file__).resolve().parent.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        urls = json.loads(self._process.stdout.readline())
        self.moto_url, self.aws_url, self.publish_url = (
            urls["moto_url"],
            urls["aws_url"],
            urls["publish_url"],
        )
        self._control = {
            "sink": _Control(self.publish_url),
            "meter": _Control(self.aws_url),
        }
        self.set_env(**_aws_environment(self.aws_url, self.publish_url))
        self.sink_state()  # open the control connection now, not inside a measured turn
        self.aws_usage()
        return self

    def stop(self) -> None:
        for control in self._control.values():
            control.close()
        if self._process.stdin:
            self._process.stdin.close()
        self._process.wait(timeout=30)
        self.restore_env()

    def sink_state(self, since: int = 0) -> dict[str, Any]:
        return self._control["sink"].call("GET", f"/_sink/state?since={since}")

    def sink_control(self, action: str, **order: Any) -> None:
        self._control["sink"].call("POST", f"/_sink/{action}", order)

    def aws_usage(self) -> AwsUsage:
        return AwsUsage.from_json(self._control["meter"].call("GET", "/_meter/usage"))

    def aws_fault(self, **fault: Any) -> None:
        self._control["meter"].call("POST", "/_meter/fault", fault)


class _Control:
    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlparse(url)
        self._conn = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=30)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        self._conn.request(method, path, body=data)
        return json.loads(self._conn.getresponse().read())

    def close(self) -> None:
        self._conn.close()


def _aws_environment(aws_url: str, publish_url: str) -> dict[str, str | None]:
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": None,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": aws_url,
        "EVENTS_HTTP_ENDPOINT": publish_url,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "chat",
    }


@dataclass
class TurnMeasurement:
    """Everything one measured turn did, as the endpoints and the stopwatch saw it."""

    design: str
    pace: str
    events_published: int
    publish_requests: int
    connections_opened: int
    connections_used: int
    aws: AwsUsage
    first_delta_ms: float  # handler start to first delta received, model time excluded
    first_delta_own_ms: float  # the same, less the time spent waiting on moto
    first_delta_botocore_ms: float  # of which botocore's client-side work (sign, serialise...)
    aws_requests_before_first_delta: int
    overhead_ms: float  # wall time less model time
    own_ms: float  # overhead less the time spent waiting on moto (CPU, signing, loopback I/O)
    aws_wait_ms: float
    wall_ms: float
    model_ms: float
    log_bytes: int
    published_event_bytes: tuple[int, ...]
    outcome: str = ""

    @property
    def other_aws_requests(self) -> int:
        return self.aws.total()


@contextmanager
def botocore_calls() -> Iterator[list[tuple[float, float]]]:
    """Record (start, end) of every boto3 API call made in this process meanwhile: the time a
    caller spends in botocore, client-side work (serialising, signing, parsing) included."""
    from botocore.client import BaseClient

    calls: list[tuple[float, float]] = []
    original = BaseClient._make_api_call

    def timed(self: Any, operation_name: str, api_params: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, operation_name, api_params)
        finally:
            calls.append((started, time.perf_counter()))

    BaseClient._make_api_call = timed  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


@contextmanager
def captured_stdout() -> Iterator[list[bytes]]:
    """Capture fd 1 (Powertools' loggers hold their own reference to the stream), yielding a
    list that holds the captured bytes once the block ends."""
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


def measure_turn(
    design: str,
    pace: str,
    stage: Stage,
    run: Callable[[], Any],
    stopwatch: Any,
    is_delta: Callable[[Any], bool],
) -> TurnMeasurement:
    """Run one turn and measure it against the stage's endpoints."""
    before = stage.sink_state(since=1 << 62)
    aws_before = stage.aws_usage()
    with captured_stdout() as logs, botocore_calls() as calls:
        started = time.perf_counter()
        outcome = run()
        ended = time.perf_counter()
    after = stage.sink_state(since=before["event_count"])
    published = [PublishedEvent(*e) for e in after["events"]]
    first_delta = next((e for e in published if is_delta(e.payload)), None)
    model_first = stopwatch.inside_before_first_token or 0.0
    first_delta_ms = (
        (first_delta.received_at - started - model_first) * 1000 if first_delta else float("nan")
    )
    wall = ended - started
    aws = stage.aws_usage().minus(aws_before)
    first_at = first_delta.received_at if first_delta else ended
    waited_before_first = aws.waited(until=first_at)
    return TurnMeasurement(
        design=design,
        pace=pace,
        events_published=len(published),
        publish_requests=after["requests"] - before["requests"],
        connections_opened=after["connections"] - before["connections"],
        connections_used=len({e.connection for e in published}),
        aws=aws,
        first_delta_ms=first_delta_ms,
        first_delta_own_ms=first_delta_ms - waited_before_first * 1000,
        first_delta_botocore_ms=(
            sum(end - start for start, end in calls if end <= first_at) - waited_before_first
        )
        * 1000,
        aws_requests_before_first_delta=aws.requests_before(first_at),
        overhead_ms=(wall - stopwatch.inside) * 1000,
        own_ms=(wall - stopwatch.inside - aws.waited()) * 1000,
        aws_wait_ms=aws.waited() * 1000,
        wall_ms=wall * 1000,
        model_ms=stopwatch.inside * 1000,
        log_bytes=len(logs[0]) if logs else 0,
        published_event_bytes=tuple(len(json.dumps(e.payload)) for e in published),
        outcome=str(outcome),
    )
