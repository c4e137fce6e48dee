"""The benchmark's stage: moto behind a counting endpoint and a recording publish endpoint, in
this process (:class:`Stage`, which the robustness suites use) or in a child process with the fake
Bedrock model (:class:`RemoteStage`, which the benchmark uses)."""

from __future__ import annotations

import http.client
import json
import logging
import os
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.aws_meter import AwsMeter, AwsUsage
from bench.publish_sink import PublishSink

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


class RemoteStage:
    """The benchmark's stage served by ``python -m bench.stage_server`` in a child process, so
    the processes under measurement do only their design's work: moto behind the counting
    endpoint, a publish endpoint over HTTP and one over HTTPS, and the fake Bedrock model."""

    def start(self) -> RemoteStage:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.stage_server"],
            cwd=Path(__file__).resolve().parent.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.urls: dict[str, str] = json.loads(self._process.stdout.readline())
        self.moto_url = self.urls["moto_url"]
        self.client = StageClient(self.urls)
        return self

    def stop(self) -> None:
        self.client.close()
        if self._process.stdin:
            self._process.stdin.close()
        self._process.wait(timeout=30)

    def environment(self) -> dict[str, str | None]:
        """What every process on this stage gets: credentials, region, the AWS endpoints."""
        return {
            **_aws_environment(self.urls["aws_url"], self.urls["publish_url"]),
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": self.urls["bedrock_url"],
        }


class StageClient:
    """Reads and steers a remote stage over kept-alive loopback connections (opened before any
    measured turn)."""

    def __init__(self, urls: dict[str, str]) -> None:
        import ssl

        tls = ssl.create_default_context(cafile=urls["ca_file"])
        self._control = {
            "sink": _Control(urls["publish_url"]),
            "tls_sink": _Control(urls["tls_publish_url"], tls),
            "meter": _Control(urls["aws_url"]),
            "model": _Control(urls["bedrock_url"]),
        }

    def close(self) -> None:
        for control in self._control.values():
            control.close()

    def sink_state(self, sink: str = "sink", since: int = 0) -> dict[str, Any]:
        return self._control[sink].call("GET", f"/_sink/state?since={since}")

    def aws_usage(self) -> AwsUsage:
        return AwsUsage.from_json(self._control["meter"].call("GET", "/_meter/usage"))

    def model_calls(self, since: int = 0) -> dict[str, Any]:
        return self._control["model"].call("GET", f"/_model/calls?since={since}")

    def configure_model(self, **config: Any) -> None:
        self._control["model"].call("POST", "/_model/config", config)

    def set_latency(self, ms: float) -> None:
        """Hold every AWS request and every publish ``ms`` before answering."""
        self._control["meter"].call("POST", "/_meter/latency", {"ms": ms})
        for sink in ("sink", "tls_sink"):
            self._control[sink].call("POST", "/_sink/latency", {"ms": ms})


class _Control:
    def __init__(self, url: str, tls: Any = None) -> None:
        parsed = urllib.parse.urlparse(url)
        host, port = parsed.hostname or "", parsed.port
        if parsed.scheme == "https":
            self._conn = http.client.HTTPSConnection(host, port, timeout=60, context=tls)
        else:
            self._conn = http.client.HTTPConnection(host, port, timeout=60)

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
