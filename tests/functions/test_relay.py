"""The relay: first delta at once, coalesced on the flush interval, ≤ 5 events per publish,
ordered and numbered, and never in the way of reading the model stream."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from gateway.providers import Completion, LocalModel, ModelRequest, TextDelta
from gateway.relay import MAX_BUFFER_BYTES, PublishError, StreamRelay


class TimedPublisher:
    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.publishes: list[tuple[float, list[dict[str, Any]]]] = []
        self.delay = delay
        self.fail = fail
        self._lock = threading.Lock()

    def publish(self, channel: str, events: list[str]) -> None:
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise PublishError("endpoint down")
        with self._lock:
            self.publishes.append((time.monotonic(), [json.loads(e) for e in events]))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for _, batch in self.publishes for e in batch]


def relay_model(
    publisher: TimedPublisher, tokens: int, tokens_per_second: float, flush: float
) -> tuple[str, float]:
    """Stream a local-model answer through a relay; returns the text and the start time."""
    relay = StreamRelay(publisher, "/replies/u", "c-1", "t-1", flush_interval=flush)
    model = LocalModel(tokens_per_second)
    request = ModelRequest("m", ({"role": "user", "content": [{"text": "hi"}]},), tokens)
    started = time.monotonic()
    text = []
    for part in model.stream(request):
        if isinstance(part, TextDelta):
            text.append(part.text)
            relay.delta(part.text)
        elif isinstance(part, Completion):
            relay.finish({"type": "done", "stopReason": part.stop_reason})
    return "".join(text), started


def test_a_paced_stream_is_coalesced_to_about_one_event_per_flush_interval():
    # GIVEN a model producing 100 tokens at 50 tokens/s (2 s) and a 200 ms flush interval
    publisher = TimedPublisher()
    text, started = relay_model(publisher, 100, 50, 0.2)

    events = publisher.events
    # THEN the text arrives whole and in order, in about one event per interval
    assert "".join(e["text"] for e in events if e["type"] == "delta") == text
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "done"
    assert 6 <= len(events) <= 2.0 / 0.2 + 3
    # AND the first delta went out at once, alone
    first_at, first_batch = publisher.publishes[0]
    assert first_batch[0]["text"] == "Local"
    assert first_at - started < 0.1
    # AND no two publishes of deltas were closer than the interval (minus scheduling slack),
    # but for the last text, sent when the stream ends, and the terminal event, sent alone
    times = [at for at, _ in publisher.publishes]
    assert all(b - a >= 0.18 for a, b in zip(times[1:-2], times[2:-2], strict=False))
    assert [e["type"] for e in publisher.publishes[-1][1]] == ["done"]


def test_a_full_speed_stream_needs_only_a_few_events():
    publisher = TimedPublisher()
    text, _ = relay_model(publisher, 512, 0, 0.2)
    assert len(publisher.events) <= 8
    assert "".join(e["text"] for e in publisher.events if e["type"] == "delta") == text


def test_a_buffer_past_a_few_kb_is_published_before_the_interval_is_up():
    publisher = TimedPublisher()
    relay = StreamRelay(publisher, "/replies/u", "c-1", "t-1", flush_interval=30.0)
    relay.delta("first")
    deadline = time.monotonic() + 2
    while not publisher.publishes and time.monotonic() < deadline:
        time.sleep(0.005)
    relay.delta("x" * (MAX_BUFFER_BYTES + 10))
    while len(publisher.publishes) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    # THEN the large buffer went out long before the 30 s interval
    assert len(publisher.publishes) == 2
    relay.finish({"type": "done"})


def test_a_slow_endpoint_gets_at_most_five_events_per_publish_in_order():
    # GIVEN an endpoint that takes 30 ms per publish and a relay that flushes every delta
    publisher = TimedPublisher(delay=0.03)
    relay = StreamRelay(publisher, "/replies/u", "c-1", "t-1", flush_interval=0.0)
    for i in range(200):
        relay.delta(f"{i} ")
        if i % 20 == 0:
            time.sleep(0.01)
    report = relay.finish({"type": "done"})
    assert all(1 <= len(batch) <= 5 for _, batch in publisher.publishes)
    assert [e["seq"] for e in publisher.events] == list(range(report.events_published))
    assert "".join(e.get("text", "") for e in publisher.events) == "".join(
        f"{i} " for i in range(200)
    )


def test_the_first_delta_goes_to_the_sender_at_once_without_waiting_for_its_publish():
    # GIVEN an endpoint whose first publish is held until the test lets it go
    entered, release = threading.Event(), threading.Event()

    class HeldPublisher(TimedPublisher):
        def publish(self, channel: str, events: list[str]) -> None:
            entered.set()
            release.wait(10)
            super().publish(channel, events)

    publisher = HeldPublisher()
    relay = StreamRelay(publisher, "/replies/u", "c-1", "t-1", flush_interval=0.2)
    # WHEN the turn's first text arrives, and more text after it
    relay.delta("first")
    relay.delta(" second")
    # THEN both calls returned while the first publish is still held, and it carries the first
    # text alone
    assert entered.wait(5)
    release.set()
    relay.finish({"type": "done"})
    assert [e.get("text") for e in publisher.publishes[0][1]] == ["first"]
    assert "".join(e.get("text", "") for e in publisher.events) == "first second"


def test_a_failing_endpoint_never_blocks_the_stream_and_is_reported():
    publisher = TimedPublisher(fail=True)
    errors: list[Exception] = []
    relay = StreamRelay(
        publisher, "/replies/u", "c-1", "t-1", flush_interval=0.01, on_error=errors.append
    )
    for i in range(50):
        relay.delta(str(i))
    report = relay.finish({"type": "done"})
    assert report.events_published == 0
    assert report.events_failed >= 2
    assert errors and isinstance(errors[0], PublishError)


def test_only_the_first_terminal_event_is_sent():
    publisher = TimedPublisher()
    relay = StreamRelay(publisher, "/replies/u", "c-1", "t-1", flush_interval=0.01)
    relay.delta("hi")
    relay.finish({"type": "done"})
    relay.finish({"type": "error", "code": "internal_error"})
    relay.delta("late")
    assert [e["type"] for e in publisher.events] == ["delta", "done"]


@pytest.mark.parametrize("flush", [0.0, 0.05])
def test_a_turn_with_no_text_publishes_just_its_terminal_event(flush):
    publisher = TimedPublisher()
    relay = StreamRelay(publisher, "/replies/u", None, "t-1", flush_interval=flush)
    relay.finish({"type": "error", "code": "invalid_request"})
    assert publisher.events == [
        {
            "type": "error",
            "conversationId": None,
            "turnId": "t-1",
            "seq": 0,
            "code": "invalid_request",
        }
    ]


def test_the_first_delta_is_published_by_the_reading_thread_before_delta_returns():
    # GIVEN a publisher that notes which thread publishes
    class ThreadNoting(TimedPublisher):
        def publish(self, channel: str, events: list[str]) -> None:
            self.threads = [*getattr(self, "threads", []), threading.current_thread()]
            super().publish(channel, events)

    publisher = ThreadNoting()
    relay = StreamRelay(publisher, "/replies/u", "c-1", "t-1", flush_interval=0.2)
    # WHEN the first delta is relayed
    relay.delta("Hello")
    # THEN it was published already, by this thread (no hand-over to the sender thread)
    assert [e["seq"] for e in publisher.events] == [0]
    assert publisher.threads == [threading.current_thread()]
    relay.delta(" world")
    relay.finish({"type": "done"})
    assert [e["seq"] for e in publisher.events] == [0, 1, 2]
    assert publisher.threads[1] is not threading.current_thread()
