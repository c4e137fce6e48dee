"""``python -m bench.stage_server``: moto, the counting AWS endpoint and the publish sink in a
process of their own, so the process under measurement does only the gateway's work (these
servers are Python threads and would otherwise compete with it for the GIL).

Prints one JSON line with the three URLs, then serves until its standard input closes.
"""

from __future__ import annotations

import json
import sys

from bench.harness import Stage


def main() -> None:
    stage = Stage().start()
    print(
        json.dumps(
            {"moto_url": stage.moto_url, "aws_url": stage.aws_url, "publish_url": stage.publish_url}
        ),
        flush=True,
    )
    try:
        sys.stdin.read()
    finally:
        stage.stop()


if __name__ == "__main__":
    main()
