"""The cold start's cuts, kept: the first turn after a Lambda SnapStart restore makes at most one
AWS request more than a warm turn (counted on the wire by the stage's metering endpoint in front
of moto), and the restore drops what a snapshot must not carry. The chat function runs through
its public handler with the benchmark's gateway scenario (the dev stack's tables, tier parameter
and a user with a day of usage), its SnapStart hooks run as Lambda runs them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from gateway import publisher, snapstart
from gateway.environment import FunctionEnvironment
from gateway.runtime import runtime_for

from bench.gateway_scenario import create_gateway
from bench.worker import _gateway
from local.handlers import LambdaContext
from tests.support.stage import Stage


@pytest.fixture(scope="module")
def gateway() -> Iterator[dict[str, Any]]:
    stage = Stage().start()
    try:
        job = create_gateway(stage.moto_url, stage.publish_url)
        # The local model: Bedrock is not on this stage (its requests are not AWS's metered ones
        # in the benchmark either).
        env = {**job.pop("env"), "MODEL_PROVIDER": "local", "LOCAL_MODEL_TOKENS_PER_SECOND": "0"}
        stage.set_env(**env)
        yield {**job, "stage": stage}
    finally:
        stage.stop()


def _requests(stage: Stage, run: Any) -> int:
    before = stage.aws_usage()
    run()
    return stage.aws_usage().minus(before).total()


def test_the_first_turn_after_a_restore_makes_at_most_one_request_more_than_a_warm_one(
    gateway: dict[str, Any],
) -> None:
    stage: Stage = gateway["stage"]
    # GIVEN the chat function initialised under SnapStart, then restored from its snapshot
    handler, event, _ = _gateway(gateway)
    snapstart.run_before_snapshot()
    restore = _requests(stage, snapstart.run_after_restore)

    # WHEN it runs its first turn, then warm ones
    def turn() -> None:
        handler(event("Hello"), LambdaContext("chat", memory_limit_in_mb=256))

    first, *warm = [_requests(stage, turn) for _ in range(3)]

    # THEN the first turn's only extra request is its user's usage read, and the restore read
    # the tier document and the prepared keys again (the snapshot's may be hours old)
    assert first - max(warm) <= 1
    assert restore == 2


def test_a_restore_closes_the_snapshots_connections_and_reseeds_random(
    gateway: dict[str, Any],
) -> None:
    # GIVEN a primed function whose publisher holds a pooled connection
    runtime = runtime_for(FunctionEnvironment.from_environ())
    runtime.prime()
    snapshot_pool = publisher.connection_pool(gateway["stage"].publish_url)
    random.seed(7)
    drawn_in_snapshot = random.random()
    random.seed(7)

    # WHEN Lambda restores it
    runtime.after_restore()

    # THEN no pool of the snapshot is reused and the jitter is not the snapshot's sequence
    assert publisher.connection_pool(gateway["stage"].publish_url) is not snapshot_pool
    assert random.random() != drawn_in_snapshot
