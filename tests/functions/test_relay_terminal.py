"""The relay never loses a terminal: whichever publish is refused for good, and whichever events
of it, the client still gets exactly one terminal event, last, with ``seq`` gap-free from 0."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from gateway.relay import LOST_ANSWER_MESSAGE, PublishError, StreamRelay

PIECES = [f"piece {i} " for i in range(12)]
DONE = {
    "type": "done",
    "stopReason": "end_turn",
    "usage": {"inputTokens": 3, "outputTokens": 12},
    "limits": {"dailyOutputTokens": {"used": 12, "allowed": 100}},
}


class RefusingPublisher:
    """Refuses, for good, the events ``refuse(request_number, events)`` names; records the
    rest as what reached the client."""

    def __init__(self, refuse: Any = None) -> None:
        self.refuse = refuse or (lambda number, events: set())
        self.requests = 0
        self.delivered: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def publish(self, channel: str, events: list[str]) -> int:
        with self._lock:
            number = self.requests
            self.requests += 1
            refused = set(self.refuse(number, events))
            self.delivered += [json.loads(e) for i, e in enumerate(events) if i not in refused]
        if refused:
            kept = tuple(i for i in range(len(events)) if i not in refused)
            raise PublishError("refused", kept)
        return 0


def run_turn(publisher: RefusingPublisher, terminal: dict[str, Any] = DONE) -> Any:
    relay = StreamRelay(
        publisher, "/replies/u", "c-1", "t-1", flush_interval=0.0, request_id="req-1"
    )
    for piece in PIECES:
        relay.delta(piece)
    return relay.finish(terminal)


def assert_one_terminal_last_and_gap_free(
    events: list[dict[str, Any]], *, gaps_allowed: bool = False
) -> dict[str, Any]:
    ends = [e for e in events if e["type"] in ("done", "error")]
    assert len(ends) == 1, events
    assert events[-1] is ends[0]
    seqs = [e["seq"] for e in events]
    if gaps_allowed and ends[0]["type"] == "error":
        # The service accepted a later event of a batch and refused an earlier one.
        assert seqs == sorted(set(seqs)) and seqs[0] >= 0
    else:
        assert seqs == list(range(len(events))), events
    return ends[0]


def requests_of_a_clean_turn() -> int:
    publisher = RefusingPublisher()
    run_turn(publisher)
    return publisher.requests


@pytest.mark.parametrize("mode", ["whole batch", "first event", "last event"])
def test_a_refused_publish_in_any_position_still_ends_with_one_terminal(mode) -> None:
    # Batching depends on thread timing, so every position up to a few past a clean turn's.
    positions = range(requests_of_a_clean_turn() + 3)
    for position in positions:

        def refuse(number: int, events: list[str], position: int = position) -> set[int]:
            if number != position:
                return set()
            return {
                "whole batch": set(range(len(events))),
                "first event": {0},
                "last event": {len(events) - 1},
            }[mode]

        # GIVEN an endpoint that refuses (part of) one publish for good
        publisher = RefusingPublisher(refuse)
        # WHEN a turn is relayed through it
        report = run_turn(publisher)
        # THEN the client holds exactly one terminal, last, numbered without gaps
        events = publisher.delivered
        terminal = assert_one_terminal_last_and_gap_free(events, gaps_allowed=mode != "whole batch")
        text = "".join(e["text"] for e in events if e["type"] == "delta")
        if text == "".join(PIECES):
            # AND a whole answer ends in done…
            assert terminal["type"] == "done", (position, events)
        else:
            # …while a holed one ends in a retryable error that still carries the limits
            assert terminal["type"] == "error", (position, events)
            assert terminal["code"] == "internal_error"
            assert terminal["retryable"] is True
            assert terminal["message"] == LOST_ANSWER_MESSAGE
            assert terminal["requestId"] == "req-1"
            assert terminal["limits"] == DONE["limits"]
            assert report.events_failed > 0
        assert report.terminal_type == terminal["type"]


def test_an_error_terminal_refused_with_its_deltas_is_sent_on_its_own_unchanged() -> None:
    error = {"type": "error", "code": "model_error", "message": "m", "retryable": True}
    publisher = RefusingPublisher(lambda n, events: set(range(len(events))) if n == 1 else set())
    relay = StreamRelay(publisher, "/replies/u", "c-1", "t-1", flush_interval=10.0)
    relay.delta("first")  # published at once (request 0, accepted)
    relay.delta("second")  # buffered, then refused
    relay.finish(error)
    events = publisher.delivered
    terminal = assert_one_terminal_last_and_gap_free(events)
    assert terminal["code"] == "model_error"
    assert [e["type"] for e in events] == ["delta", "error"]


def test_after_a_lost_delta_no_more_deltas_are_sent() -> None:
    publisher = RefusingPublisher(
        lambda number, events: set(range(len(events))) if number == 0 else set()
    )
    report = run_turn(publisher)
    assert [e["type"] for e in publisher.delivered] == ["error"]
    assert publisher.delivered[0]["seq"] == 0
    assert report.events_failed > 0


def test_an_endpoint_that_refuses_everything_leaves_no_terminal_and_says_so() -> None:
    publisher = RefusingPublisher(lambda number, events: set(range(len(events))))
    report = run_turn(publisher)
    assert publisher.delivered == []
    assert report.terminal_type is None
    assert report.events_published == 0


def test_a_lone_surrogate_from_a_model_is_published_as_a_replacement_character() -> None:
    publisher = RefusingPublisher()
    relay = StreamRelay(publisher, "/replies/u", "c-1", "t-1", flush_interval=0.0)
    relay.delta("a \ud800 b")
    relay.finish(DONE)
    assert publisher.delivered[0]["text"] == "a \ufffd b"
