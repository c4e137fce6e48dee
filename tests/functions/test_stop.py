"""Stopping a turn: the stop request (its own invocation), the running turn's look-out for it
(at most one store request per 2 s of streaming, none on a shorter turn), and the stopped turn's
single ``done`` with ``stopReason: "stopped"`` and only the usage produced."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import chat
import pytest
from gateway.providers import Completion, ModelRequest, TextDelta
from gateway.runtime import Runtime
from gateway.stop import (
    CHECK_INTERVAL_SECONDS,
    STOP_TTL_SECONDS,
    DynamoStopSignals,
    StopUnavailable,
    StopWatch,
    stop_key,
)
from gateway.telemetry import NoAnalytics
from gateway.usage import TokenUsage
from gateway.usage_store import DynamoTurnStore

from tests.functions.support import (
    OTHER_SUB,
    OUTBOUND,
    SUB,
    CountingCalls,
    RecordingEndpoint,
    StaticTiers,
    chat_payload,
    create_tables,
    function_environment,
    publish_event,
)
from tests.support.appsync import lambda_context

OWN_CHANNEL = f"/{OUTBOUND}/{SUB}"
PIECE = "word "  # 5 characters: ceil(5 n / 4) output tokens for n pieces


class StreamClock:
    """Wall time fixed, monotonic time moved by the model as it streams (no real waiting)."""

    def __init__(self) -> None:
        self.mono = 1_000.0
        self.wall = 1_790_000_000.0

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


class PacedModel:
    """Streams ``pieces`` pieces, moving the clock ``seconds_per_piece`` before each; records
    how many it yielded and whether its stream was closed before the end."""

    name = "bedrock"

    def __init__(self, clock: StreamClock, pieces: int, seconds_per_piece: float = 0.25) -> None:
        self.clock = clock
        self.pieces = pieces
        self.step = seconds_per_piece
        self.yielded = 0
        self.closed_early = False

    def stream(self, request: ModelRequest) -> Iterator[TextDelta | Completion]:
        try:
            for _ in range(self.pieces):
                self.clock.mono += self.step
                self.yielded += 1
                yield TextDelta(PIECE)
            yield Completion("end_turn", TokenUsage(7, self.pieces))
        except GeneratorExit:
            self.closed_early = True
            raise


class FakeStops:
    """Stop signals in memory: ``request`` records; ``requested`` is true from the
    ``stop_at_check``-th look (1-based), or once a request for that turn was recorded."""

    def __init__(self, stop_at_check: int | None = None, fail: bool = False) -> None:
        self.stop_at_check = stop_at_check
        self.fail = fail
        self.requests: list[tuple[str, str]] = []
        self.checks: list[tuple[str, str]] = []

    def request(self, sub: str, turn_id: str, now: int) -> None:
        if self.fail:
            raise StopUnavailable("update_item: ProvisionedThroughputExceededException")
        self.requests.append((sub, turn_id))

    def requested(self, sub: str, turn_id: str, now: int) -> bool:
        self.checks.append((sub, turn_id))
        if self.fail:
            raise StopUnavailable("get_item: ProvisionedThroughputExceededException")
        if (sub, turn_id) in self.requests:
            return True
        return self.stop_at_check is not None and len(self.checks) >= self.stop_at_check


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_tables(client)
    return client


def handler_for(
    dynamodb: Any, endpoint: RecordingEndpoint, provider: Any, stops: Any, clock: Any = None
):
    from gateway.publisher import EventsHttpPublisher

    env = function_environment(events_http_endpoint=endpoint.url)
    runtime = Runtime(
        env,
        tiers=StaticTiers(),
        store=DynamoTurnStore(lambda: dynamodb, "usage", "prepared"),
        provider=provider,
        publisher=EventsHttpPublisher(endpoint.url, region="us-east-1", credentials=lambda: None),
        analytics=NoAnalytics(),
        stops=stops,
        clock=clock,
    )
    return chat.make_handler(runtime)


def usage_item(dynamodb: Any, sub: str = SUB) -> dict[str, Any]:
    item = dynamodb.get_item(TableName="usage", Key={"pk": {"S": f"user#{sub}"}})["Item"]
    return {k: next(iter(v.values())) for k, v in item.items()}


# -- the running turn ----------------------------------------------------------------------------


def test_a_stopped_turn_ends_with_one_done_stopped_and_only_the_usage_produced(
    dynamodb, endpoint
) -> None:
    # GIVEN a 100-piece answer at 4 pieces/s and a stop the turn finds at its second look (4 s)
    clock = StreamClock()
    model = PacedModel(clock, pieces=100)
    stops = FakeStops(stop_at_check=2)
    handle = handler_for(dynamodb, endpoint, model, stops, clock)

    # WHEN the turn runs
    handle(publish_event(chat_payload(turnId="t-7")), lambda_context())

    # THEN it stopped reading the model at once and closed its stream
    assert model.closed_early
    produced = model.yielded
    assert produced == 2 * CHECK_INTERVAL_SECONDS / model.step
    # AND the client got the text produced and exactly one terminal: done, stopped
    events = endpoint.events(OWN_CHANNEL)
    assert [e["seq"] for e in events] == list(range(len(events)))
    ends = [e for e in events if e["type"] in ("done", "error")]
    assert ends == [events[-1]]
    done = events[-1]
    assert done["type"] == "done"
    assert done["stopReason"] == "stopped"
    assert "".join(e["text"] for e in events if e["type"] == "delta") == PIECE * produced
    # AND only what was produced is charged, settled with no reservation left
    output = math.ceil(len(PIECE) * produced / 4)
    assert done["usage"]["outputTokens"] == output
    item = usage_item(dynamodb)
    assert not [k for k in item if k.startswith("r#")]
    assert sum(int(v) for k, v in item.items() if k.startswith("d#") and k.endswith("#o")) == output
    # AND the look-outs were for the caller's own turn
    assert set(stops.checks) == {(SUB, "t-7")}


def test_a_turn_shorter_than_the_interval_never_looks_for_a_stop(dynamodb, endpoint) -> None:
    clock = StreamClock()
    pieces = int(CHECK_INTERVAL_SECONDS / 0.25) - 1  # 1.75 s of streaming
    stops = FakeStops(stop_at_check=1)
    handle = handler_for(dynamodb, endpoint, PacedModel(clock, pieces), stops, clock)
    handle(publish_event(chat_payload()), lambda_context())
    assert stops.checks == []
    assert endpoint.events(OWN_CHANNEL)[-1]["stopReason"] == "end_turn"


def test_a_long_turn_looks_at_most_once_per_interval_of_streaming(dynamodb, endpoint) -> None:
    clock = StreamClock()
    model = PacedModel(clock, pieces=200)  # 50 s of streaming
    stops = FakeStops()
    handle = handler_for(dynamodb, endpoint, model, stops, clock)
    handle(publish_event(chat_payload()), lambda_context())
    streamed = model.pieces * model.step
    assert len(stops.checks) == int(streamed / CHECK_INTERVAL_SECONDS)
    assert endpoint.events(OWN_CHANNEL)[-1]["stopReason"] == "end_turn"


def test_a_store_that_cannot_be_read_never_stops_or_breaks_the_turn(dynamodb, endpoint) -> None:
    clock = StreamClock()
    stops = FakeStops(fail=True)
    handle = handler_for(dynamodb, endpoint, PacedModel(clock, 40), stops, clock)
    handle(publish_event(chat_payload()), lambda_context())
    assert len(stops.checks) == 5
    assert endpoint.events(OWN_CHANNEL)[-1]["stopReason"] == "end_turn"


def test_the_watch_waits_a_whole_interval_before_its_first_look() -> None:
    now = [0.0]
    stops = FakeStops(stop_at_check=1)
    watch = StopWatch(stops, SUB, "t-1", monotonic=lambda: now[0], wall=lambda: 0.0)
    now[0] = CHECK_INTERVAL_SECONDS - 0.001
    assert not watch.stopped() and stops.checks == []
    now[0] = CHECK_INTERVAL_SECONDS
    assert watch.stopped()
    assert watch.stopped()  # once stopped, it stays so without asking again
    assert len(stops.checks) == 1


# -- the stop request ---------------------------------------------------------------------------


def test_a_stop_request_is_recorded_for_the_callers_own_turn_and_answers_nothing(
    dynamodb, endpoint
) -> None:
    stops = FakeStops()
    handle = handler_for(dynamodb, endpoint, PacedModel(StreamClock(), 1), stops)
    handle(publish_event({"action": "stop", "turnId": "t-9", "conversationId": "c-1"}), None)
    assert stops.requests == [(SUB, "t-9")]
    assert endpoint.events() == []


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "stop"},
        {"action": "stop", "turnId": ""},
        {"action": "stop", "turnId": "t-1\n"},
        {"action": "stop", "turnId": "x" * 65},
        {"action": "stop", "turnId": 7},
        {"action": "stop", "turnId": "t-1", "conversationId": "c 1"},
        {"action": "halt", "turnId": "t-1"},
        '{"action": "stop", "turnId": ',
    ],
)
def test_a_malformed_stop_gets_invalid_request_under_an_id_of_its_own(
    dynamodb, endpoint, payload
) -> None:
    stops = FakeStops()
    handle = handler_for(dynamodb, endpoint, PacedModel(StreamClock(), 1), stops)
    handle(publish_event(payload), lambda_context())
    [event] = endpoint.events(OWN_CHANNEL)
    assert (event["type"], event["code"], event["seq"]) == ("error", "invalid_request", 0)
    # The turn the stop names is another turn: its id is never reused for the stop's error.
    assert event["turnId"].startswith("g-")
    assert stops.requests == []


def test_a_stop_that_cannot_be_recorded_is_logged_and_answers_nothing(dynamodb, endpoint) -> None:
    stops = FakeStops(fail=True)
    handle = handler_for(dynamodb, endpoint, PacedModel(StreamClock(), 1), stops)
    handle(publish_event({"action": "stop", "turnId": "t-9"}), lambda_context())
    assert endpoint.events() == []


# -- the DynamoDB adapter (moto) ------------------------------------------------------------------


def test_a_stop_is_one_item_with_the_tables_ttl_found_until_it_expires(dynamodb) -> None:
    calls = CountingCalls(dynamodb)
    signals = DynamoStopSignals(lambda: dynamodb, "usage")
    signals.request(SUB, "t-1", 1_000)
    assert calls.calls == ["UpdateItem"]
    item = dynamodb.get_item(TableName="usage", Key={"pk": {"S": stop_key(SUB, "t-1")}})["Item"]
    assert item["expiresAt"] == {"N": str(1_000 + STOP_TTL_SECONDS)}
    calls.reset()
    assert signals.requested(SUB, "t-1", 1_001)
    assert calls.calls == ["GetItem"]
    # Expired but not yet deleted by TTL: no longer a stop.
    assert not signals.requested(SUB, "t-1", 1_000 + STOP_TTL_SECONDS)
    # Another turn, another user: no stop.
    assert not signals.requested(SUB, "t-2", 1_001)
    assert not signals.requested(OTHER_SUB, "t-1", 1_001)


def test_a_stop_item_never_touches_the_users_usage_item(dynamodb, endpoint) -> None:
    handle = handler_for(dynamodb, endpoint, PacedModel(StreamClock(), 1), None)
    handle(publish_event(chat_payload()), lambda_context())
    before = usage_item(dynamodb)
    DynamoStopSignals(lambda: dynamodb, "usage").request(SUB, "t-1", int(time.time()))
    assert usage_item(dynamodb) == before


def test_an_unreachable_table_is_reported_as_unavailable() -> None:
    from botocore.exceptions import EndpointConnectionError

    class Down:
        def get_item(self, **_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://dynamodb")

    with pytest.raises(StopUnavailable):
        DynamoStopSignals(lambda: Down(), "usage").requested(SUB, "t-1", 0)


def test_a_stop_from_another_invocation_ends_a_running_turn_within_the_interval(
    dynamodb, endpoint
) -> None:
    """Two invocations of one handler, as the local runtime runs them: a real-time turn on the
    local model at 40 tokens/s, and a stop published while it streams, through moto."""
    from gateway.providers import LocalModel

    handle = handler_for(dynamodb, endpoint, LocalModel(40), None)
    payload = chat_payload("[tokens=400] go", turnId="t-long")
    turn = threading.Thread(target=handle, args=(publish_event(payload), lambda_context()))
    started = time.monotonic()
    turn.start()
    deadline = started + 10
    while not endpoint.events(OWN_CHANNEL) and time.monotonic() < deadline:
        time.sleep(0.01)
    handle(publish_event({"action": "stop", "turnId": "t-long"}), lambda_context("req-stop"))
    turn.join(timeout=30)

    events = endpoint.events(OWN_CHANNEL)
    done = events[-1]
    assert done["type"] == "done" and done["stopReason"] == "stopped"
    assert [e["type"] for e in events].count("done") == 1
    assert done["usage"]["outputTokens"] < 400
    item = usage_item(dynamodb)
    assert not [k for k in item if k.startswith("r#")]


def test_a_stop_is_seen_at_the_first_look_after_it_was_recorded(dynamodb, endpoint) -> None:
    # GIVEN a stop recorded 3.1 s into streaming, by another invocation
    clock = StreamClock()
    stops = FakeStops()

    class StoppedMidway(PacedModel):
        def stream(self, request: ModelRequest) -> Iterator[TextDelta | Completion]:
            started = self.clock.mono
            for part in super().stream(request):
                if self.clock.mono - started >= 3.1 and not stops.requests:
                    stops.request(SUB, "t-1", 0)
                    self.recorded_at = self.clock.mono - started
                yield part

    model = StoppedMidway(clock, pieces=100)
    handle = handler_for(dynamodb, endpoint, model, stops, clock)
    handle(publish_event(chat_payload()), lambda_context())
    # THEN the turn stopped at its next look, within one interval of the stop
    stopped_at = model.yielded * model.step
    assert stopped_at == 2 * CHECK_INTERVAL_SECONDS
    assert stopped_at - model.recorded_at <= CHECK_INTERVAL_SECONDS
    assert endpoint.events(OWN_CHANNEL)[-1]["stopReason"] == "stopped"


def test_cutting_a_bedrock_stream_short_closes_its_event_stream() -> None:
    from gateway.providers import BedrockProvider
    from gateway.stop import cut_short

    class EventStream:
        closed = False

        def __iter__(self):
            for i in range(100):
                yield {"contentBlockDelta": {"delta": {"text": f"w{i} "}}}

        def close(self) -> None:
            EventStream.closed = True

    class Client:
        def converse_stream(self, **_: Any) -> dict[str, Any]:
            return {"stream": EventStream()}

    request = ModelRequest(
        "amazon.nova-micro-v1:0", ({"role": "user", "content": [{"text": "hi there"}]},), 512
    )
    parts = BedrockProvider(lambda: Client()).stream(request)
    produced = "".join(next(parts).text for _ in range(3))
    completion = cut_short(parts, request, len(produced), log=None)
    assert EventStream.closed
    assert completion.stop_reason == "stopped"
    assert completion.usage.output_tokens == math.ceil(len(produced) / 4)
