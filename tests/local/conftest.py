"""One local gateway (dev stack, fast keep-alives) shared by the protocol tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.local.gateway_harness import Gateway, start_gateway


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(
        tmp_path_factory.mktemp("gateway"),
        "--stack",
        "dev",
        "--keepalive-seconds",
        "1",
        "--tokens-per-second",
        "0",
    )
    try:
        yield running
    finally:
        running.stop()
