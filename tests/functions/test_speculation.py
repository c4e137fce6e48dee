"""Speculation: the model stream opens while admission is in flight, nothing is published before
the turn is admitted, and a call admission refuses is cancelled and counted. And the in-memory
index that keeps the prepared-response lookup out of most first messages."""

from __future__ import annotations

import threading
import time
from typing import Any

import chat
from gateway.contract import ErrorCode
from gateway.metering import plan_turn
from gateway.prepared_index import PreparedIndex
from gateway.providers import Completion, ModelFailure, ModelRequest, TextDelta
from gateway.speculation import SpeculativeCall, predicts_admission_with_margin
from gateway.usage import TokenUsage, UsageSnapshot
from gateway.usage_store import DynamoTurnStore

from tests.functions.support import (
    OWN_CHANNEL,
    SUB,
    ScriptedModel,
    chat_payload,
    deltas,
    emf_blobs,
    follow_up,
    metric_values,
    prepare,
    publish_event,
    terminal,
    tier_config,
)
from tests.support.appsync import lambda_context

FREE = tier_config().tiers["free"]
NOW = 1_795_000_000


# -- the prediction ------------------------------------------------------------------------------


def test_a_kept_item_with_room_for_two_turns_predicts_admission():
    known = UsageSnapshot()
    plan = plan_turn(known, FREE, NOW, 100, "r")
    assert predicts_admission_with_margin(FREE, known, plan, 100, NOW)


def test_no_prediction_near_a_limit_or_the_request_limits():
    # daily input 2000: 1850 used leaves room for this turn's 100 but not for another after it
    near = UsageSnapshot.from_item({"pk": "u", "version": 3, f"d#{NOW - NOW % 600}#i": 1850})
    plan = plan_turn(near, FREE, NOW, 100, "r")
    assert not predicts_admission_with_margin(FREE, near, plan, 100, NOW)
    busy = UsageSnapshot.from_item({"pk": "u", "version": 3, f"q#{NOW - NOW % 10}": 59})
    plan = plan_turn(busy, FREE, NOW, 100, "r")
    assert not predicts_admission_with_margin(FREE, busy, plan, 100, NOW)


# -- the call ----------------------------------------------------------------------------------


class GatedModel:
    """A model whose first part waits for ``gate``; records whether its stream was closed."""

    name = "bedrock"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.opened = threading.Event()
        self.closed = threading.Event()

    def stream(self, request: ModelRequest):
        self.opened.set()
        try:
            self.gate.wait(5)
            yield TextDelta("a")
            yield TextDelta("b")
            yield Completion("end_turn", TokenUsage(3, 2))
        finally:
            self.closed.set()


REQUEST = ModelRequest("m", ({"role": "user", "content": [{"text": "hi"}]},), 10)


def test_a_taken_call_yields_what_the_model_streams():
    model = GatedModel()
    call = SpeculativeCall(model, REQUEST, 7)
    assert model.opened.wait(5)
    model.gate.set()
    parts = list(call.take())
    assert [getattr(p, "text", None) for p in parts[:2]] == ["a", "b"]
    assert isinstance(parts[-1], Completion)


def test_a_call_cancelled_before_its_first_part_closes_when_the_part_arrives():
    model = GatedModel()
    call = SpeculativeCall(model, REQUEST, 7)
    assert model.opened.wait(5)
    threading.Timer(0.05, model.gate.set).start()
    call.cancel(wait=5)
    assert model.closed.is_set()


def test_a_model_failure_reaches_the_turn_when_taken():
    class Failing:
        name = "bedrock"

        def stream(self, request):
            raise ModelFailure(ErrorCode.MODEL_THROTTLED, "busy")
            yield  # pragma: no cover

    call = SpeculativeCall(Failing(), REQUEST, 7)
    try:
        list(call.take())
    except ModelFailure as err:
        assert err.code == ErrorCode.MODEL_THROTTLED
    else:  # pragma: no cover
        raise AssertionError("the failure was lost")


# -- through the handler -----------------------------------------------------------------------


class SlowStore(DynamoTurnStore):
    """The real store, its admission write taking ``delay`` seconds; records when it returned."""

    def __init__(self, *args: Any, delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay = delay
        self.reserved_at: list[float] = []

    def reserve(self, user_key, admission, expected, now):
        time.sleep(self.delay)
        try:
            return super().reserve(user_key, admission, expected, now)
        finally:
            self.reserved_at.append(time.monotonic())


class StampedModel(ScriptedModel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.called_at: list[float] = []

    def stream(self, request):
        self.called_at.append(time.monotonic())
        yield from super().stream(request)


def test_a_warm_turn_opens_the_model_before_its_admission_write_returns(gateway):
    # GIVEN a warm function that knows the user's usage, and an admission write taking 100 ms
    store = SlowStore(lambda: gateway.dynamodb, "usage", "prepared")
    gateway.model = StampedModel()
    handler = chat.make_handler(gateway.runtime(store=store))
    handler(publish_event(follow_up("t-1")), lambda_context())
    store.delay = 0.1
    gateway.endpoint.publishes.clear()
    # WHEN the user's next turn runs
    handler(publish_event(follow_up("t-2")), lambda_context())
    # THEN the model was called before the admission write returned
    assert gateway.model.called_at[1] < store.reserved_at[1] - 0.05
    # AND the turn streamed and completed normally, with nothing counted as cancelled
    events = gateway.endpoint.events(OWN_CHANNEL)
    assert deltas(events) == gateway.model.text and terminal(events)["type"] == "done"
    assert gateway.analytics.records[-1].speculative_cancelled == 0


def test_nothing_is_published_before_the_turn_is_admitted(gateway):
    class StampingPublisher:
        def __init__(self) -> None:
            self.at: list[float] = []

        def publish(self, channel: str, events: list[str]) -> int:
            self.at.append(time.monotonic())
            return 0

    store = SlowStore(lambda: gateway.dynamodb, "usage", "prepared")
    publisher = StampingPublisher()
    handler = chat.make_handler(gateway.runtime(store=store, publisher=publisher))
    handler(publish_event(follow_up("t-1")), lambda_context())
    store.delay = 0.1
    publisher.at.clear()
    handler(publish_event(follow_up("t-2")), lambda_context())
    assert publisher.at and min(publisher.at) >= store.reserved_at[1]


def test_a_speculative_call_that_admission_refuses_is_cancelled_and_counted(gateway, capsys):
    # GIVEN a warm function whose kept usage item predicts admission
    model = GatedModel()
    model.gate.set()
    handler = chat.make_handler(gateway.runtime(provider=model))
    handler(publish_event(follow_up("t-1")), lambda_context())
    # AND meanwhile the user's daily input ran out elsewhere (the kept item is out of date)
    gateway.dynamodb.update_item(
        TableName="usage",
        Key={"pk": {"S": f"user#{SUB}"}},
        UpdateExpression="SET #b = :n ADD version :one",
        ExpressionAttributeNames={"#b": f"d#{int(time.time()) // 600 * 600 - 600}#i"},
        ExpressionAttributeValues={":n": {"N": "2000"}, ":one": {"N": "1"}},
    )
    gateway.endpoint.publishes.clear()
    model.closed.clear()
    capsys.readouterr()
    # WHEN the next turn runs
    handler(publish_event(follow_up("t-2")), lambda_context())
    # THEN it is refused, nothing of the model's answer was published, the call was closed
    events = gateway.endpoint.events(OWN_CHANNEL)
    assert [e["type"] for e in events] == ["error"] and events[0]["code"] == "limit_exceeded"
    assert model.closed.wait(5)
    # AND the cancelled call and its input are in the analytics record and the metrics
    record = gateway.analytics.records[-1]
    assert record.speculative_cancelled == 1 and record.speculative_input_tokens > 0
    blobs = emf_blobs(capsys.readouterr().out)
    assert metric_values(blobs, "SpeculativeCallsCancelled") == [1]
    assert metric_values(blobs, "SpeculativeInputTokens") == [record.speculative_input_tokens]


def test_a_prompt_the_index_knows_is_looked_up_and_served(gateway):
    prepare(gateway, "What is the gateway?", "One governed door.")
    runtime = gateway.runtime()
    handler = chat.make_handler(runtime)
    handler(publish_event(follow_up("t-1")), lambda_context())
    runtime.core().admission.prepared_index.refresh()
    gateway.calls.reset()
    gateway.model.requests.clear()
    handler(publish_event(chat_payload("what is the gateway", turnId="t-2")), lambda_context())
    turn = [e for e in gateway.endpoint.events(OWN_CHANNEL) if e["turnId"] == "t-2"]
    assert deltas(turn) == "One governed door." and terminal(turn)["cached"] is True
    assert gateway.model.requests == []  # never speculated on: it could be served
    assert gateway.calls.calls == ["BatchGetItem", "UpdateItem"]


# -- the index ---------------------------------------------------------------------------------


def test_the_index_is_unknown_until_loaded_then_answers_and_refreshes_when_due():
    loads: list[int] = []
    keys = {"prep#*#a"}
    now = [0.0]

    def load():
        loads.append(1)
        return set(keys)

    index = PreparedIndex(load, max_age=30, clock=lambda: now[0])
    assert index.could_serve(["prep#*#a"]) is None  # not loaded: look it up
    index.refresh()
    assert index.could_serve(["prep#m#a", "prep#*#a"]) is True
    assert index.could_serve(["prep#*#b"]) is False
    keys.add("prep#*#b")
    now[0] = 31.0
    # Due: this turn looks its candidates up (an entry put 31 s ago is never missed) while the
    # index refreshes in the background.
    assert index.could_serve(["prep#*#b"]) is None
    deadline = time.monotonic() + 5
    while index.could_serve(["prep#*#b"]) is not True and time.monotonic() < deadline:
        time.sleep(0.01)
    assert index.could_serve(["prep#*#b"]) is True


def test_an_index_that_cannot_be_refreshed_is_not_trusted_once_due():
    state = {"fail": False}

    def load():
        if state["fail"]:
            raise RuntimeError("AccessDenied")
        return {"prep#*#a"}

    now = [0.0]
    index = PreparedIndex(load, max_age=30, clock=lambda: now[0])
    index.refresh()
    state["fail"] = True
    now[0] = 29.0
    assert index.could_serve(["prep#*#b"]) is False
    now[0] = 100.0
    assert index.could_serve(["prep#*#b"]) is None
