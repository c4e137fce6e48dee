"""The local gateway runs at most ``--max-concurrent-turns`` chat invocations at once."""

from __future__ import annotations

import threading
import time

import pytest

from local.__main__ import parse_args
from local.handlers import FunctionRuntime


def _runtime_recording_overlap(max_concurrency: int) -> tuple[FunctionRuntime, dict[str, int]]:
    seen = {"running": 0, "most": 0, "finished": 0}
    lock = threading.Lock()

    def chat(event, context):
        with lock:
            seen["running"] += 1
            seen["most"] = max(seen["most"], seen["running"])
        time.sleep(0.2)
        with lock:
            seen["running"] -= 1
            seen["finished"] += 1

    runtime = FunctionRuntime(
        stack="dev",
        region="us-east-1",
        account_id="000000000000",
        max_concurrency=max_concurrency,
        loader=lambda name: chat,
    )
    runtime.load("chat")
    return runtime, seen


@pytest.mark.parametrize("slots", [1, 3])
def test_chat_invocations_beyond_the_limit_wait_for_a_slot(slots):
    # GIVEN a function runtime with a few slots
    runtime, seen = _runtime_recording_overlap(slots)
    # WHEN more invocations than slots arrive at once
    for _ in range(6):
        runtime.invoke_event("chat", {})
    deadline = time.monotonic() + 10
    while seen["finished"] < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    # THEN all of them ran, never more than the slots at a time
    assert seen["finished"] == 6
    assert seen["most"] == slots


def test_the_limit_is_an_option_and_must_be_positive(capsys):
    assert parse_args(["--max-concurrent-turns", "4"]).max_concurrent_turns == 4
    assert parse_args([]).max_concurrent_turns == 32
    with pytest.raises(SystemExit):
        parse_args(["--max-concurrent-turns", "0"])
    assert "--max-concurrent-turns must be at least 1" in capsys.readouterr().err
