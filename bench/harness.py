"""The benchmark's stage in a child process with the fake Bedrock model (:class:`RemoteStage`):
the robustness suites' in-process stage (:class:`tests.support.stage.Stage`) served by
``python -m bench.stage_server``, and the client that reads and steers it."""

from __future__ import annotations

import http.client
import importlib.util
import json
import subprocess
import sys
import urllib.parse
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.aws_meter import AwsUsage

REPO = Path(__file__).resolve().parent.parent


@cache
def _aws_meter() -> ModuleType:
    """The project's AWS request meter (``tests/support/aws_meter.py``, standard library only),
    loaded from its file: a worker of the reference design runs with the reference's Lambda
    bundle first on its path, and that bundle has a ``tests`` package of its own, which would
    shadow the project's."""
    spec = importlib.util.spec_from_file_location(
        "ai_gateway_aws_meter", REPO / "tests" / "support" / "aws_meter.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


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
        from tests.support.stage import aws_environment  # the parent's path has the project's

        return {
            **aws_environment(self.urls["aws_url"], self.urls["publish_url"]),
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
        usage: AwsUsage = _aws_meter().AwsUsage.from_json(
            self._control["meter"].call("GET", "/_meter/usage")
        )
        return usage

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
