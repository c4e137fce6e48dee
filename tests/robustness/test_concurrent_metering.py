"""Fifty concurrent turns of one user at the edge of a limit, through the real chat handler and
the real DynamoDB adapter against moto in server mode.

For the daily window (now) and the monthly window (in the last second of a UTC month):
- the worst case of the admitted turns never exceeds the limit;
- every reservation ends settled or released (none is left on the usage item);
- the stored usage equals what was there before plus the usage of the settled turns;
- every turn ends with exactly one terminal event: ``done`` for each admitted turn, a typed
  refusal for every other.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import chat
from gateway.metering import estimate_input_tokens
from gateway.providers import Completion, LocalModel, ModelRequest
from gateway.runtime import Runtime

from tests.robustness.cases import ran, saw
from tests.robustness.conftest import OUTBOUND, TIERS
from tests.support.appsync import lambda_context

TURNS = 50
FREE = TIERS["free"]
PER_TURN = FREE["maxOutputTokensPerTurn"]
#: Room for three whole turns and part of a fourth; the rest must be refused.
HEADROOM = 3 * PER_TURN + 50


class RecordingModel:
    """The local model, recording each call's ``maxTokens`` (the output a turn may produce)."""

    name = "local"

    def __init__(self) -> None:
        self._model = LocalModel(0)
        self._lock = threading.Lock()
        self.max_tokens: list[int] = []

    def stream(self, request: ModelRequest) -> Iterator[Any]:
        # Recorded once the call is read to its end: a call opened ahead of admission and
        # cancelled (speculation) produced nothing the user was charged or sent.
        for part in self._model.stream(request):
            if isinstance(part, Completion):
                with self._lock:
                    self.max_tokens.append(request.max_tokens)
            yield part


class FixedClock:
    """Wall time pinned to one instant (the turn's windows), monotonic time real."""

    def __init__(self, epoch: float) -> None:
        self.epoch = epoch

    def now(self) -> float:
        return self.epoch

    def monotonic(self) -> float:
        return time.monotonic()


def _concurrent_turns(stage, sub: str, clock) -> tuple[RecordingModel, dict[str, list[dict]]]:
    model = RecordingModel()
    handler = chat.make_handler(Runtime(stage.env, provider=model, clock=clock))
    identity = stage.user(sub, ["free"])
    start = threading.Barrier(TURNS)
    mark = stage.mark()
    failures: list[BaseException] = []

    def one(i: int) -> None:
        event = stage.publish_event(identity, [stage.turn(f"turn {i}: tell me about windows")])
        start.wait()
        try:
            handler(event, lambda_context(str(uuid.uuid4())))
        except BaseException as err:  # the assertion below reports it
            failures.append(err)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(TURNS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert not any(t.is_alive() for t in threads), "a turn never finished"
    by_turn: dict[str, list[dict]] = defaultdict(list)
    for published in stage.published_since(mark):
        assert published.channel == f"/{OUTBOUND}/{sub}"
        by_turn[published.payload["turnId"]].append(published.payload)
    ran("concurrency: turns", TURNS)
    return model, by_turn


def _check(stage, sub: str, now: float, window: str, seeded: dict[str, int], model, by_turn):
    limit = FREE[window]
    # Every turn ended with exactly one terminal event, last; admitted turns with done.
    assert len(by_turn) == TURNS
    outcomes = []
    for events in by_turn.values():
        terminal = [e for e in events if e["type"] in ("done", "error")]
        assert terminal == [events[-1]]
        assert [e["seq"] for e in events] == list(range(len(events)))
        outcomes.append(terminal[0])
    done = [e for e in outcomes if e["type"] == "done"]
    refused = [e for e in outcomes if e["type"] == "error"]
    assert {e["code"] for e in refused} <= {"limit_exceeded", "usage_unavailable"}
    assert len(done) == len(model.max_tokens), "an admitted turn did not complete"
    assert done and refused, "the edge should admit some turns and refuse others"
    saw(f"concurrent turns admitted at the {window} edge", len(done))
    for code in sorted({e["code"] for e in refused}):
        saw(
            f"concurrent turns refused ({code}) at the {window} edge",
            sum(e["code"] == code for e in refused),
        )

    # The admitted turns' worst case fits the limit (output: maxTokens; input: the estimate).
    assert seeded[window] + sum(model.max_tokens) <= limit
    estimate = estimate_input_tokens(["turn 00: tell me about windows"])
    input_window = window.replace("Output", "Input")
    assert seeded[input_window] + len(done) * estimate <= FREE[input_window]

    # No reservation is left; stored usage is what was there plus the settled turns' usage.
    snapshot = stage.usage(sub)
    assert snapshot.reservations == {}
    settled = snapshot.settled(int(now))
    produced_out = sum(e["usage"]["outputTokens"] for e in done)
    produced_in = sum(e["usage"]["inputTokens"] for e in done)
    assert settled[window] == seeded[window] + produced_out
    assert settled[input_window] == seeded[input_window] + produced_in
    assert settled[window] <= limit


def test_fifty_concurrent_turns_at_the_edge_of_the_daily_limit(stage) -> None:
    # GIVEN a user whose daily output is HEADROOM tokens short of the limit
    sub, now = str(uuid.uuid4()), time.time()
    used = FREE["dailyOutputTokens"] - HEADROOM
    stage.seed(sub, now, daily=(500, used), monthly=(500, used))
    # WHEN fifty of their turns arrive at once
    model, by_turn = _concurrent_turns(stage, sub, clock=None)
    # THEN
    seeded = {
        "dailyOutputTokens": used,
        "dailyInputTokens": 500,
    }
    _check(stage, sub, time.time(), "dailyOutputTokens", seeded, model, by_turn)


def test_fifty_concurrent_turns_at_the_edge_of_the_monthly_limit_in_its_last_second(stage) -> None:
    # GIVEN the last second of a UTC month, and a user HEADROOM tokens short of the monthly
    # output limit with little usage in the last day
    last_second = dt.datetime(2026, 11, 30, 23, 59, 59, 500_000, tzinfo=dt.UTC).timestamp()
    clock = FixedClock(last_second)
    sub = str(uuid.uuid4())
    used = FREE["monthlyOutputTokens"] - HEADROOM
    stage.seed(sub, last_second, daily=(50, 100), monthly=(500, used))
    # WHEN fifty of their turns arrive at once
    model, by_turn = _concurrent_turns(stage, sub, clock=clock)
    # THEN
    seeded = {"monthlyOutputTokens": used, "monthlyInputTokens": 500}
    _check(stage, sub, last_second, "monthlyOutputTokens", seeded, model, by_turn)
