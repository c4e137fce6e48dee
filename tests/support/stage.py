"""The stage the robustness suites run the real handlers on, in this process: moto in server mode
on a loopback port behind the counting, fault-injecting AWS endpoint (``aws_meter``) and a
recording publish endpoint (``publish_sink``), with the environment boto3 and the functions
read. The benchmark's stage server (``bench/stage_server.py``) serves the same stage from a
process of its own."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from tests.support.aws_meter import AwsMeter, AwsUsage
from tests.support.publish_sink import PublishSink

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
        self.set_env(**aws_environment(self.aws_url, self.publish_url))
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


def aws_environment(aws_url: str, publish_url: str) -> dict[str, str | None]:
    """Credentials, region and endpoints for every process on a stage."""
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
