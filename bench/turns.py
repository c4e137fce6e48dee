"""Per-turn benchmark: the gateway and the reference on one stage, at full speed and at 50
tokens/s, and the figures the table and the cost model need."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

from bench.cost import TurnFootprint
from bench.harness import RemoteStage, TurnMeasurement

#: In-region network time the stage cannot reproduce on loopback, added when modelling Lambda
#: time. Deliberately low figures (they understate the reference's cost more than the gateway's,
#: which makes fewer requests): a request to DynamoDB, Firehose, SSM or CloudWatch; an HTTP
#: publish to AppSync Events on an open connection; a new HTTPS connection (TCP + TLS handshake).
AWS_REQUEST_MS = 5.0
PUBLISH_REQUEST_MS = 5.0
NEW_CONNECTION_MS = 10.0


@dataclass
class PaceFigures:
    """One design at one pace: medians over the measured turns (counts are per turn)."""

    design: str
    pace: str
    turns: list[TurnMeasurement]

    def _median(self, attribute: str) -> float:
        return statistics.median(getattr(t, attribute) for t in self.turns)

    @property
    def events_published(self) -> float:
        return self._median("events_published")

    @property
    def events_range(self) -> tuple[int, int]:
        values = [t.events_published for t in self.turns]
        return min(values), max(values)

    @property
    def publish_requests(self) -> float:
        return self._median("publish_requests")

    @property
    def connections_opened(self) -> float:
        return self._median("connections_opened")

    @property
    def connections_used(self) -> float:
        return self._median("connections_used")

    @property
    def other_aws_requests(self) -> float:
        return statistics.median(t.aws.total() for t in self.turns)

    @property
    def aws_by_operation(self) -> Counter[str]:
        return self.turns[len(self.turns) // 2].aws.requests

    @property
    def first_delta_ms(self) -> float:
        return self._median("first_delta_ms")

    @property
    def first_delta_own_ms(self) -> float:
        return self._median("first_delta_own_ms")

    @property
    def first_delta_botocore_ms(self) -> float:
        return self._median("first_delta_botocore_ms")

    @property
    def aws_before_first_delta(self) -> float:
        return self._median("aws_requests_before_first_delta")

    @property
    def overhead_ms(self) -> float:
        return self._median("overhead_ms")

    @property
    def own_ms(self) -> float:
        return self._median("own_ms")

    @property
    def log_bytes(self) -> float:
        return self._median("log_bytes")

    def first_delta_in_region_ms(self) -> float:
        """Own time before the first delta plus in-region latency of the requests before it and
        of the first publish (on a new connection where the design opens one per publish)."""
        new_connection = (
            NEW_CONNECTION_MS if self.connections_opened >= self.publish_requests else 0
        )
        return (
            self.first_delta_own_ms
            + self.aws_before_first_delta * AWS_REQUEST_MS
            + PUBLISH_REQUEST_MS
            + new_connection
        )

    def lambda_seconds_in_region(self) -> float:
        """The function's own time per turn in AWS: measured own time (CPU, signing, loopback
        I/O) plus modelled in-region latency of every request and new connection, serially."""
        return (
            self.own_ms
            + self.other_aws_requests * AWS_REQUEST_MS
            + self.publish_requests * PUBLISH_REQUEST_MS
            + self.connections_opened * NEW_CONNECTION_MS
        ) / 1000

    def footprint(self) -> TurnFootprint:
        middle = sorted(self.turns, key=lambda t: t.events_published)[len(self.turns) // 2]
        aws = middle.aws
        return TurnFootprint(
            published_event_bytes=middle.published_event_bytes,
            dynamodb_read_units=aws.read_units,
            dynamodb_write_units=aws.write_units,
            firehose_record_bytes=tuple(aws.firehose_records),
            putmetricdata_requests=sum(
                n for op, n in aws.requests.items() if op.endswith(":PutMetricData")
            ),
            ssm_requests=sum(n for op, n in aws.requests.items() if op.startswith("ssm:")),
            log_bytes=int(self.log_bytes),
            lambda_seconds=self.lambda_seconds_in_region(),
        )


@dataclass
class TurnBenchmark:
    gateway: dict[str, PaceFigures]
    reference: dict[str, PaceFigures]
    gateway_cold: TurnMeasurement
    memory_mb: int


FULL, PACED = "full speed", "50 tokens/s"


def run(runs: int = 15, paced_runs: int = 3, memory_mb: int = 1024, log=print) -> TurnBenchmark:
    from bench.gateway_scenario import (
        GatewayBench,
        create_gateway_resources,
        gateway_environment,
    )
    from bench.reference_scenario import create_reference_resources, run_reference_turn

    stage = RemoteStage().start()
    try:
        settings, resources = create_gateway_resources(stage)
        env = gateway_environment(stage, resources, settings)
        create_reference_resources(stage)

        gateway = GatewayBench(stage, env, settings)
        log("  gateway: cold turn, warm-up, full-speed turns, 50 tokens/s turns")
        cold = gateway.run_turn("cold", 0)
        gateway.run_turn("warm-up", 0)
        gateway_full = [gateway.run_turn(FULL, 0) for _ in range(runs)]
        gateway_paced = [gateway.run_turn(PACED, 50) for _ in range(paced_runs)]

        log("  reference: warm-up, full-speed turns, 50 tokens/s turns")
        run_reference_turn(stage, "warm-up", None)
        reference_full = [run_reference_turn(stage, FULL, None) for _ in range(runs)]
        reference_paced = [run_reference_turn(stage, PACED, 50) for _ in range(paced_runs)]
    finally:
        stage.stop()
    return TurnBenchmark(
        gateway={
            FULL: PaceFigures("gateway", FULL, gateway_full),
            PACED: PaceFigures("gateway", PACED, gateway_paced),
        },
        reference={
            FULL: PaceFigures("reference", FULL, reference_full),
            PACED: PaceFigures("reference", PACED, reference_paced),
        },
        gateway_cold=cold,
        memory_mb=memory_mb,
    )
