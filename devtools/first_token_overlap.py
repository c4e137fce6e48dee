"""Time the gateway adds to the model's first token, for the ways admission can meet the model.

Runs warm chat turns through the real turn code and DynamoDB adapter against moto (in process),
with 5 ms added to every DynamoDB request (an in-region round trip), a model whose first token
takes 300 ms (and 0 ms), and a publisher that notes when the first delta is handed to it. The
figure is the first delta's publish, less the start of the turn, less the model's own time to
first token (median of the runs). Strategies, for the commonest turn — a conversation's first
message on a tier with ``cache: true`` — and for a later message:

* ``sequential``: prepared-response lookup and reservation first, then the model (no index, no
  speculation);
* ``index+speculation`` (the default): a warm index of prepared keys skips the lookup and the
  model opens while the admission write is in flight;
* ``overlap-lookup``: no index; the model opens while the lookup and the write are in flight,
  and is cancelled on a hit.

    .venv/bin/python -m devtools.first_token_overlap [--runs 25]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

AWS_DELAY = 0.005


class Model:
    """Streams 20 tokens after ``ttft`` seconds; reports usage."""

    name = "local"

    def __init__(self, ttft: float) -> None:
        self.ttft = ttft

    def stream(self, request: Any) -> Iterator[Any]:
        from gateway.providers import Completion, TextDelta
        from gateway.usage import TokenUsage

        time.sleep(self.ttft)
        for i in range(20):
            yield TextDelta(f" w{i}")
        yield Completion("end_turn", TokenUsage(10, 20))


class FirstPublish:
    def __init__(self) -> None:
        self.first: float | None = None

    def publish(self, channel: str, events: list[str]) -> int:
        if self.first is None:
            self.first = time.monotonic()
        return 0


class Discard:
    def record(self, record: Any) -> None: ...

    def emit(self, record: Any, counters: Any) -> None: ...


def measure(strategy: str, ttft: float, first_message: bool, runs: int) -> float:
    import boto3
    from gateway.events_door import EventsDoor, EventsDoorSettings, InboundEvent
    from gateway.turn import ChatTurns, TurnDeps, TurnSettings
    from gateway.usage_store import DynamoTurnStore
    from gateway.wire import RequestLimits

    from tests.functions.support import StaticTiers, cognito_identity, create_tables

    client = boto3.client("dynamodb", region_name="us-east-1")
    table = f"usage-{uuid.uuid4().hex[:8]}"
    prepared = f"prepared-{uuid.uuid4().hex[:8]}"
    create_tables(client, table, prepared)
    client.put_item(  # an operator's entry, for another prompt
        TableName=prepared,
        Item={"pk": {"S": "prep#*#0"}, "prompt": {"S": "x"}, "response": {"S": "y"}},
    )
    client.meta.events.register("before-send.dynamodb.*", lambda **_: time.sleep(AWS_DELAY))
    store = DynamoTurnStore(lambda: client, table, prepared)
    publisher = FirstPublish()
    log = logging.getLogger("bench")
    core = ChatTurns(
        TurnDeps(
            tiers=StaticTiers(),
            store=store,
            provider=Model(ttft),
            analytics=Discard(),
            metrics=Discard(),
            log=log,
            prepared_keys=store if strategy == "index+speculation" else None,
        ),
        TurnSettings(
            speculate=strategy != "sequential",
            speculate_on_prepared_lookup=strategy == "overlap-lookup",
        ),
    )
    turns = EventsDoor(
        core, publisher, EventsDoorSettings("chat", "replies", RequestLimits(40, 16000)), log
    )
    sub = str(uuid.uuid4())

    def turn(text: str, history: bool) -> float:
        messages = [{"role": "user", "content": [{"text": text}]}]
        if history:
            messages = [
                {"role": "user", "content": [{"text": "hi"}]},
                {"role": "assistant", "content": [{"text": "hello"}]},
                *messages,
            ]
        payload = {"conversationId": f"c-{uuid.uuid4().hex[:8]}", "messages": messages}
        publisher.first = None
        started = time.monotonic()
        turns.handle(
            InboundEvent(cognito_identity(sub), f"/chat/{sub}", ["chat", sub], payload, "r")
        )
        assert publisher.first is not None
        return (publisher.first - started - ttft) * 1000

    turn("warm-up", history=True)  # the function now knows the user's usage item
    if core.admission.prepared_index is not None:
        core.admission.prepared_index.refresh()
    added = [turn(f"question {i}", history=not first_message) for i in range(runs)]
    return statistics.median(added)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25)
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    from moto import mock_aws

    print(
        f"time added to the model's first token, ms (median of {args.runs} warm turns, "
        f"{AWS_DELAY * 1000:.0f} ms per DynamoDB request)\n"
    )
    print("| turn | strategy | model TTFT 300 ms | model TTFT 0 ms |")
    print("|---|---|---|---|")
    with mock_aws():
        for first_message in (True, False):
            label = "first message, cache tier" if first_message else "later message"
            for strategy in ("sequential", "index+speculation", "overlap-lookup"):
                if not first_message and strategy == "overlap-lookup":
                    continue  # no lookup to overlap
                slow = measure(strategy, 0.3, first_message, args.runs)
                fast = measure(strategy, 0.0, first_message, args.runs)
                print(f"| {label} | {strategy} | {slow:.1f} | {fast:.1f} |")


if __name__ == "__main__":
    main()
