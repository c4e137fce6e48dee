"""``python -m bench.stage_server``: the benchmark's stage in a process of its own — moto behind the
counting AWS endpoint, the publish endpoint over HTTP and over HTTPS (with a throwaway CA), and the
fake Bedrock model — so the processes under measurement do only their design's work (these
servers are Python threads and would otherwise compete with it for the GIL and for CPU quota).

Prints one JSON line with the URLs (and the CA file a client must trust), then serves until its
standard input closes.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from bench import tls
from bench.fake_bedrock import FakeBedrock
from tests.support.publish_sink import PublishSink
from tests.support.stage import Stage


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-stage-") as directory:
        cert, key = tls.self_signed(Path(directory))
        stage = Stage().start()
        tls_sink = PublishSink(tls=tls.server_context(cert, key))
        model = FakeBedrock()
        urls = {
            "moto_url": stage.moto_url,
            "aws_url": stage.aws_url,
            "publish_url": stage.publish_url,
            "tls_publish_url": tls_sink.start(),
            "bedrock_url": model.start(),
            "ca_file": str(cert),
        }
        print(json.dumps(urls), flush=True)
        try:
            sys.stdin.read()
        finally:
            model.stop()
            tls_sink.stop()
            stage.stop()


if __name__ == "__main__":
    main()
