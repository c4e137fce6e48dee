"""Faults injected at the edges of the real chat handler — the Bedrock client under the real
Bedrock adapter (a botocore Stubber, or a client double whose stream breaks), DynamoDB and
Firehose answering with AWS errors on the wire (the counting endpoint in front of moto), the
AppSync publish endpoint answering 5xx — never by replacing the chat turn.

For each fault: the user gets exactly one terminal event wherever delivery is possible, the tokens
produced are charged, the reservation is released (or, when the store itself is down, left to
expire), and the failure shows in the logs and in the EMF metrics.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import chat
import pytest
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError, EventStreamError, ReadTimeoutError
from botocore.stub import Stubber
from gateway.metering import DEFAULT_RESERVATION_SECONDS
from gateway.providers import BedrockProvider, LocalModel
from gateway.publisher import publish_stats
from gateway.runtime import Runtime

from tests.robustness.cases import ran
from tests.robustness.conftest import LITE, OUTBOUND, PRO, TIERS, emf_blobs, emf_metric, terminal_of
from tests.support.appsync import lambda_context

FREE_MAX = TIERS["free"]["maxOutputTokensPerTurn"]


# -- a Bedrock client whose ConverseStream follows a script -------------------------------------


Script = Callable[[dict[str, Any]], dict[str, Any]]


class ScriptedBedrock:
    """A bedrock-runtime client double for the real :class:`BedrockProvider`: each
    ``converse_stream`` call answers with the next script."""

    def __init__(self, *scripts: Script) -> None:
        self._scripts = list(scripts)
        self.calls: list[dict[str, Any]] = []

    def converse_stream(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return self._scripts.pop(0)(kwargs)


def raising(error: Exception) -> Script:
    def script(kwargs: dict[str, Any]) -> dict[str, Any]:
        raise error

    return script


def streaming(tokens: int, then: Exception | None = None) -> Script:
    """A Bedrock event stream of ``tokens`` deltas (capped by maxTokens), then either the usage
    metadata or ``then`` raised mid-stream."""

    def script(kwargs: dict[str, Any]) -> dict[str, Any]:
        produced = min(tokens, kwargs["inferenceConfig"]["maxTokens"])

        def events() -> Iterator[dict[str, Any]]:
            yield {"messageStart": {"role": "assistant"}}
            for i in range(produced):
                yield {
                    "contentBlockDelta": {"delta": {"text": f"word{i} "}, "contentBlockIndex": 0}
                }
            if then is not None:
                raise then
            yield {"contentBlockStop": {"contentBlockIndex": 0}}
            yield {"messageStop": {"stopReason": "end_turn"}}
            yield {"metadata": {"usage": {"inputTokens": 9, "outputTokens": produced}}}

        return {"stream": events()}

    return script


def throttling() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Too many requests"}},
        "ConverseStream",
    )


def stream_broken() -> EventStreamError:
    return EventStreamError(
        {"Error": {"Code": "modelStreamErrorException", "Message": "stream interrupted"}},
        "ConverseStream",
    )


def read_timeout() -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")


# -- running one turn and reading what it left behind -------------------------------------------


@dataclass
class Outcome:
    sub: str
    events: list[dict[str, Any]]
    channels: set[str]
    logs: list[dict[str, Any]]
    emf: list[dict[str, Any]]
    before: Any
    after: Any
    now: float

    @property
    def terminal(self) -> list[dict[str, Any]]:
        return terminal_of(self.events)

    def charged(self, window: str = "dailyOutputTokens") -> int:
        return (
            self.after.settled(int(self.now))[window] - self.before.settled(int(self.now))[window]
        )

    def logged(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.logs if line.get("message") == message]

    def finished(self) -> dict[str, Any]:
        (line,) = self.logged("turn finished")
        return line


@pytest.fixture
def run_turn(stage, capsys) -> Iterator[Callable[..., Outcome]]:
    """Run one turn of a fresh user through the real handler with ``provider`` at the model
    port (the local model by default); logs go to a JSON buffer, EMF to captured stdout."""

    def run(
        provider: Any = None,
        groups: list[str] | None = None,
        text: str = "Hi",
        arm: Callable[[], None] | None = None,
    ) -> Outcome:
        buffer = io.StringIO()
        # A logger of this turn's own (Powertools keeps one handler per service name).
        log = Logger(
            service=f"chat-faults-{uuid.uuid4().hex[:8]}",
            level="INFO",
            logger_handler=logging.StreamHandler(buffer),
        )
        runtime = Runtime(stage.env, provider=provider or LocalModel(0), log=log)
        handler = chat.make_handler(runtime)
        sub = str(uuid.uuid4())
        now = time.time()
        stage.seed(sub, now, daily=(10, 100))
        before = stage.usage(sub)
        mark = stage.mark()
        capsys.readouterr()
        if arm is not None:
            arm()  # the fault, armed once the user is in place
        try:
            event = stage.publish_event(stage.user(sub, groups or ["free"]), [stage.turn(text)])
            handler(event, lambda_context(str(uuid.uuid4())))
        finally:
            stage.stage.meter.clear_faults()
            stage.stage.sink.recover()
        stdout = capsys.readouterr().out
        published = stage.published_since(mark)
        ran("faults: scenarios")
        return Outcome(
            sub=sub,
            events=[p.payload for p in published],
            channels={p.channel for p in published},
            logs=[json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()],
            emf=emf_blobs(stdout),
            before=before,
            after=stage.usage(sub),
            now=now,
        )

    yield run
    stage.stage.meter.clear_faults()
    stage.stage.sink.recover()


def _assert_one_terminal_on_own_channel(outcome: Outcome) -> dict[str, Any]:
    assert outcome.channels == {f"/{OUTBOUND}/{outcome.sub}"}
    assert outcome.terminal == [outcome.events[-1]]
    assert [e["seq"] for e in outcome.events] == list(range(len(outcome.events)))
    return outcome.events[-1]


def _assert_no_reservation_left(outcome: Outcome) -> None:
    assert outcome.after.reservations == {}


# -- the model -----------------------------------------------------------------------------------


def test_model_throttled_at_the_start_charges_nothing_and_says_so(run_turn) -> None:
    # GIVEN Bedrock answering ConverseStream with ThrottlingException (a botocore Stubber)
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error(
        "converse_stream", service_error_code="ThrottlingException", http_status_code=429
    )
    with stubber:
        outcome = run_turn(BedrockProvider(lambda: client))
    # THEN one retryable model_throttled error, nothing charged, the reservation released
    error = _assert_one_terminal_on_own_channel(outcome)
    assert len(outcome.events) == 1
    assert (error["type"], error["code"], error["retryable"]) == ("error", "model_throttled", True)
    assert outcome.charged() == 0 and outcome.charged("dailyInputTokens") == 0
    _assert_no_reservation_left(outcome)
    # AND the failure shows in the logs and the metrics
    assert any(
        line.get("error_code") == "model_throttled" for line in outcome.logged("model call failed")
    )
    assert outcome.finished()["error_code"] == "model_throttled"
    assert emf_metric(outcome.emf, "ModelThrottles") == 1
    assert emf_metric(outcome.emf, "Errors", code="model_throttled") == 1


def test_a_throttled_model_falls_back_before_the_first_delta(run_turn) -> None:
    # GIVEN a pro user (fallback model) and a primary model that throttles at the start
    client = ScriptedBedrock(raising(throttling()), streaming(40))
    outcome = run_turn(BedrockProvider(lambda: client), groups=["pro"])
    # THEN the fallback answers: done, on the fallback model, its usage charged
    done = _assert_one_terminal_on_own_channel(outcome)
    assert [c["modelId"] for c in client.calls] == [PRO, LITE]
    assert (done["type"], done["modelId"], done["usage"]["outputTokens"]) == ("done", LITE, 40)
    assert outcome.charged() == 40
    _assert_no_reservation_left(outcome)
    # AND the throttle shows in the logs and the metrics
    assert outcome.logged("model call failed")
    assert emf_metric(outcome.emf, "ModelThrottles") == 1


@pytest.mark.parametrize(
    ("fault", "after_tokens", "code"),
    [
        (stream_broken, 30, "model_error"),
        (read_timeout, 30, "model_timeout"),
        (read_timeout, 0, "model_timeout"),
    ],
    ids=["broken-mid-stream", "timing-out-mid-stream", "timing-out-at-the-start"],
)
def test_a_model_failing_charges_what_it_produced(run_turn, fault, after_tokens, code) -> None:
    # GIVEN Bedrock streaming some tokens, then failing
    outcome = run_turn(BedrockProvider(lambda: ScriptedBedrock(streaming(after_tokens, fault()))))
    # THEN the deltas that were produced reach the user, then exactly one error
    error = _assert_one_terminal_on_own_channel(outcome)
    assert (error["type"], error["code"], error["retryable"]) == ("error", code, True)
    delivered = "".join(e["text"] for e in outcome.events if e["type"] == "delta")
    assert delivered == "".join(f"word{i} " for i in range(after_tokens))
    # AND what was produced is charged (estimated from the text, as no usage came), and the
    # charge is the one logged and counted
    finished = outcome.finished()
    assert finished["error_code"] == code
    if after_tokens:
        assert 0 < outcome.charged() <= FREE_MAX
        assert outcome.charged() == finished["output_tokens"]
        by_model = emf_metric(outcome.emf, "OutputTokens", modelId=finished["model"])
        assert by_model == finished["output_tokens"]
    else:
        assert outcome.charged() == 0
    _assert_no_reservation_left(outcome)
    assert emf_metric(outcome.emf, "Errors", code=code) == 1


# -- DynamoDB ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "aws_code"),
    [(400, "ThrottlingException"), (503, "ServiceUnavailable"), (500, "InternalServerError")],
    ids=["throttling", "unavailable", "internal-error"],
)
def test_a_usage_store_that_cannot_be_read_refuses_the_turn(stage, run_turn, status, aws_code):
    # GIVEN DynamoDB answering every request with an error (botocore retries, then gives up)
    errors_before = sum(stage.stage.meter.snapshot().errors.values())
    outcome = run_turn(
        arm=lambda: stage.stage.meter.inject(service="dynamodb", status=status, code=aws_code)
    )
    # THEN the turn fails closed: one retryable usage_unavailable, no model call, no charge
    error = _assert_one_terminal_on_own_channel(outcome)
    assert (error["code"], error["retryable"]) == ("usage_unavailable", True)
    assert outcome.after.settled(int(outcome.now)) == outcome.before.settled(int(outcome.now))
    _assert_no_reservation_left(outcome)
    assert sum(stage.stage.meter.snapshot().errors.values()) - errors_before >= 3  # retried
    # AND the failure shows in the logs and the metrics
    assert outcome.logged("usage store unavailable")
    assert emf_metric(outcome.emf, "UsageStoreFailures") >= 1
    assert emf_metric(outcome.emf, "Errors", code="usage_unavailable") == 1


def test_dynamodb_throttling_that_passes_is_absorbed_by_retries(stage, run_turn) -> None:
    # GIVEN DynamoDB throttling the next two requests only
    outcome = run_turn(
        arm=lambda: stage.stage.meter.inject(
            service="dynamodb", status=400, code="ThrottlingException", count=2
        )
    )
    # THEN the turn completes and is charged as usual
    done = _assert_one_terminal_on_own_channel(outcome)
    assert done["type"] == "done"
    assert outcome.charged() == done["usage"]["outputTokens"] > 0
    _assert_no_reservation_left(outcome)


def test_dynamodb_failing_after_the_answer_leaves_a_reservation_that_expires(stage, run_turn):
    # GIVEN DynamoDB accepting the read and the reservation, then failing every write after
    outcome = run_turn(
        arm=lambda: stage.stage.meter.inject(
            service="dynamodb",
            operation="UpdateItem",
            status=503,
            code="ServiceUnavailable",
            after=1,
        )
    )
    # THEN the user still gets the answer and one done
    done = _assert_one_terminal_on_own_channel(outcome)
    assert done["type"] == "done"
    # AND the turn's worst case stays reserved (it covers what was produced) until it expires
    (reservation,) = outcome.after.reservations.values()
    assert reservation.output_tokens >= done["usage"]["outputTokens"]
    assert reservation.expires_at <= outcome.now + DEFAULT_RESERVATION_SECONDS + 5
    # AND the failure shows in the logs and the metrics
    assert outcome.logged("usage not settled")
    assert emf_metric(outcome.emf, "UsageStoreFailures") >= 1


# -- Firehose ------------------------------------------------------------------------------------


def test_firehose_failing_never_breaks_the_turn(stage, run_turn) -> None:
    # GIVEN Firehose failing every PutRecord
    outcome = run_turn(
        arm=lambda: stage.stage.meter.inject(
            service="firehose", status=500, code="ServiceUnavailableException"
        )
    )
    # THEN the turn completes, is charged and released
    done = _assert_one_terminal_on_own_channel(outcome)
    assert done["type"] == "done"
    assert outcome.charged() == done["usage"]["outputTokens"] > 0
    _assert_no_reservation_left(outcome)
    # AND the lost record shows in the logs and the metrics
    assert outcome.logged("analytics record lost")
    assert emf_metric(outcome.emf, "AnalyticsFailures") == 1


# -- publishing ----------------------------------------------------------------------------------


def test_publish_answering_5xx_then_recovering_delivers_every_event(stage, run_turn) -> None:
    # GIVEN the events endpoint answering 503 to the next two publishes
    refused_before, retries_before = stage.stage.sink.refused_requests, publish_stats().retries
    outcome = run_turn(
        text="[tokens=100] tell me", arm=lambda: stage.stage.sink.fail_next(2, status=503)
    )
    # THEN the publisher retried, and the user got the whole answer in order, one done, last
    assert stage.stage.sink.refused_requests - refused_before == 2
    assert publish_stats().retries - retries_before >= 2
    done = _assert_one_terminal_on_own_channel(outcome)
    assert done["type"] == "done" and done["usage"]["outputTokens"] == 100
    assert outcome.charged() == 100
    _assert_no_reservation_left(outcome)
    # AND nothing was lost, so no publish failure is reported, but the retries show
    assert emf_metric(outcome.emf, "PublishFailures") == 0
    assert emf_metric(outcome.emf, "PublishRetries") >= 2


def test_publish_failing_for_good_still_charges_and_releases(stage, run_turn) -> None:
    # GIVEN the events endpoint failing every publish
    outcome = run_turn(arm=lambda: stage.stage.sink.fail_forever(status=500))
    # THEN nothing could be delivered, yet the turn finished: charged for what the model
    # produced, its reservation settled
    assert outcome.events == []
    finished = outcome.finished()
    assert finished["output_tokens"] > 0
    assert outcome.charged() == finished["output_tokens"]
    _assert_no_reservation_left(outcome)
    # AND the lost events show in the logs and the metrics
    assert outcome.logged("publish failed")
    assert emf_metric(outcome.emf, "PublishFailures") >= 1
