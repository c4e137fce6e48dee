"""The DynamoDB usage store against moto: one item per user, conditional reservations, and many
concurrent turns of one user at the edge of a limit."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from gateway.contract import ErrorCode
from gateway.events_door import EventsDoor, EventsDoorSettings, InboundEvent
from gateway.metering import Refusal, plan_turn
from gateway.ports import StoreUnavailable
from gateway.providers import Completion, ModelFailure, ModelRequest, TextDelta
from gateway.relay import Publisher
from gateway.telemetry import TurnCounters, TurnRecord
from gateway.tiers import ModelPrice
from gateway.token_bound import input_token_bound
from gateway.turn import ChatTurns, TurnDeps
from gateway.usage import TokenUsage, UsageSnapshot
from gateway.usage_store import DynamoTurnStore
from gateway.wire import RequestLimits

from tests.functions.support import (
    INBOUND,
    OUTBOUND,
    SUB,
    SerialisedClient,
    StaticTiers,
    chat_payload,
    cognito_identity,
    create_tables,
    tier_config,
)

NOW = 1_741_000_000
FREE = tier_config().tiers["free"]


@pytest.fixture
def dynamodb(aws: None) -> Iterator[Any]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_tables(client)
    yield client


@pytest.fixture
def store(dynamodb: Any) -> DynamoTurnStore:
    return DynamoTurnStore(lambda: dynamodb, "usage", "prepared")


def raw_item(dynamodb: Any, sub: str = SUB) -> dict[str, Any]:
    item = dynamodb.get_item(TableName="usage", Key={"pk": {"S": f"user#{sub}"}})["Item"]
    return item


def test_a_reservation_against_an_outdated_item_writes_nothing_and_returns_the_current_one(
    store, dynamodb
):
    # GIVEN two turns that both read the user's (absent) item
    seen = store.read(f"user#{SUB}", ()).usage
    first = plan_turn(seen, FREE, NOW, 100, "first")
    second = plan_turn(seen, FREE, NOW, 100, "second")
    assert not isinstance(first, Refusal) and not isinstance(second, Refusal)

    # WHEN the first reserves, then the second tries with what it read
    assert store.reserve(f"user#{SUB}", first, seen, NOW) is None
    current = store.reserve(f"user#{SUB}", second, seen, NOW)

    # THEN the second learns the item as it now is, and its reservation was not written
    assert current is not None and set(current.reservations) == {"first"}
    assert "r#second" not in raw_item(dynamodb)
    # AND retried against that item it succeeds and bumps the version
    retry = plan_turn(current, FREE, NOW, 100, "second")
    assert store.reserve(f"user#{SUB}", retry, current, NOW) is None
    assert raw_item(dynamodb)["version"] == {"N": "2"}


def test_settling_replaces_the_reservation_with_real_usage_in_one_write(store, dynamodb):
    seen = store.read(f"user#{SUB}", ()).usage
    plan = plan_turn(seen, FREE, NOW, 100, "r1")
    store.reserve(f"user#{SUB}", plan, seen, NOW)
    after = store.settle(f"user#{SUB}", plan.reservation, TokenUsage(90, 33, 5, 6), NOW + 20)
    assert after.reservations == {}
    assert after.settled(NOW + 20)["dailyOutputTokens"] == 33
    item = raw_item(dynamodb)
    assert "r#r1" not in item
    assert int(item["expiresAt"]["N"]) == NOW + 20 + 40 * 86400


def test_a_settle_sent_twice_charges_once(store, dynamodb):
    # GIVEN a settled turn (as when botocore retries a settle whose first attempt landed)
    seen = store.read(f"user#{SUB}", ()).usage
    plan = plan_turn(seen, FREE, NOW, 100, "r1")
    store.reserve(f"user#{SUB}", plan, seen, NOW)
    store.settle(f"user#{SUB}", plan.reservation, TokenUsage(90, 33), NOW + 20)

    # WHEN the same settle arrives again
    again = store.settle(f"user#{SUB}", plan.reservation, TokenUsage(90, 33), NOW + 21)

    # THEN nothing more is charged, and the usage as stored comes back
    assert again.settled(NOW + 21)["dailyOutputTokens"] == 33
    assert raw_item(dynamodb)[f"m#{plan.reservation.month}#o"] == {"N": "33"}


def test_every_write_bumps_the_version_so_a_kept_snapshot_is_exact_while_current(store, dynamodb):
    seen = store.read(f"user#{SUB}", ()).usage
    plans = [plan_turn(seen, FREE, NOW, 100, rid) for rid in ("r1", "r2")]
    store.reserve(f"user#{SUB}", plans[0], seen, NOW)
    assert raw_item(dynamodb)["version"] == {"N": "1"}
    after = store.settle(f"user#{SUB}", plans[0].reservation, TokenUsage(90, 33), NOW + 20)
    assert after.version == 2 and raw_item(dynamodb)["version"] == {"N": "2"}
    second = plan_turn(after, FREE, NOW + 21, 100, "r2")
    store.reserve(f"user#{SUB}", second, after, NOW + 21)
    store.release(f"user#{SUB}", "r2")
    assert raw_item(dynamodb)["version"] == {"N": "4"}
    # a reservation planned on the snapshot the settle returned is now refused by the store
    late = plan_turn(after, FREE, NOW + 22, 100, "r3")
    current = store.reserve(f"user#{SUB}", late, after, NOW + 22)
    assert current is not None and current.version == 4 and "r#r3" not in raw_item(dynamodb)


def test_prepared_candidates_can_be_read_without_the_usage_item(store, dynamodb):
    dynamodb.put_item(
        TableName="prepared",
        Item={"pk": {"S": "prep#*#abc"}, "prompt": {"S": "hi"}, "response": {"S": "hello"}},
    )
    found = store.read_prepared(("prep#m#abc", "prep#*#abc"))
    assert set(found) == {"prep#*#abc"} and found["prep#*#abc"].response == "hello"
    assert store.read_prepared(()) == {}


def test_releasing_for_a_user_without_an_item_creates_none(store, dynamodb):
    store.release("user#nobody", "r1")
    assert "Item" not in dynamodb.get_item(TableName="usage", Key={"pk": {"S": "user#nobody"}})


def test_one_read_returns_usage_and_prepared_candidates(store, dynamodb):
    dynamodb.put_item(
        TableName="prepared",
        Item={"pk": {"S": "prep#*#abc"}, "prompt": {"S": "hi"}, "response": {"S": "hello"}},
    )
    state = store.read(f"user#{SUB}", ("prep#m#abc", "prep#*#abc"))
    assert state.usage == UsageSnapshot()
    assert set(state.prepared) == {"prep#*#abc"}
    assert state.prepared["prep#*#abc"].response == "hello"


# -- many turns of one user at once -------------------------------------------------------------


class ListPublisher:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def publish(self, channel: str, events: list[str]) -> None:
        with self._lock:
            self.events.extend(json.loads(e) for e in events)


class EstimatingModel:
    """Reports exactly the input the gateway estimated, so settled usage equals reservations;
    fails before any output when the prompt says FAIL."""

    name = "local"

    def stream(self, request: ModelRequest) -> Iterator[TextDelta | Completion]:
        text = request.messages[-1]["content"][0]["text"]
        if "FAIL" in text:
            raise ModelFailure(ErrorCode.MODEL_THROTTLED)
        yield TextDelta("ok")
        yield Completion("end_turn", TokenUsage(300, 1))


#: The test tiers, with room for every racing turn in the free tier's request limits.
RACING_TIERS = StaticTiers(tier_config(maxConcurrentTurns=100, requestsPerMinute=1000))


class Discard:
    def record(self, record: TurnRecord) -> None: ...

    def emit(self, record: TurnRecord, counters: TurnCounters) -> None: ...


def racing_door(
    store: DynamoTurnStore, publisher: Publisher, tiers: StaticTiers = RACING_TIERS
) -> EventsDoor:
    """The chat channel's door over ``store``, on the racing tiers, with the estimating model."""
    import logging

    log = logging.getLogger("test")
    core = ChatTurns(
        TurnDeps(
            tiers=tiers,
            store=store,
            provider=EstimatingModel(),
            analytics=Discard(),
            metrics=Discard(),
            log=log,
            prepared_keys=store,
        )
    )
    settings = EventsDoorSettings(INBOUND, OUTBOUND, RequestLimits(40, 16000), flush_interval=0.01)
    return EventsDoor(core, publisher, settings, log)


def concurrent_turns(
    dynamodb: Any, prompts: list[str], publisher: Publisher, tiers: StaticTiers = RACING_TIERS
) -> None:

    serialised = SerialisedClient(dynamodb)
    store = DynamoTurnStore(lambda: serialised, "usage", "prepared")
    turns = racing_door(store, publisher, tiers)
    start = threading.Barrier(len(prompts))

    def one(index: int, prompt: str) -> None:
        payload = chat_payload(prompt, turnId=f"t-{index}")
        start.wait()
        turns.handle(
            InboundEvent(
                cognito_identity(), f"/{INBOUND}/{SUB}", [INBOUND, SUB], payload, f"req-{index}"
            )
        )

    threads = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(prompts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def daily_input_tokens(item: dict[str, Any]) -> int:
    return sum(int(v["N"]) for k, v in item.items() if k.startswith("d#") and k.endswith("#i"))


# 252 ASCII characters bound to exactly 300 input tokens (a token per byte and 48 of framing);
# the free tier allows 2000 a day.
PROMPT = "p" * (300 - input_token_bound([""]))
assert input_token_bound([PROMPT]) == 300


def test_concurrent_turns_at_the_limit_edge_never_admit_more_than_the_limit(dynamodb):
    # GIVEN 24 turns of one user released at once, each reserving 300 of 2000 input tokens
    publisher = ListPublisher()
    concurrent_turns(dynamodb, [PROMPT] * 24, publisher)

    # THEN exactly six were admitted and the rest refused, whatever the interleaving: each
    # refused as too large for what is left (a smaller turn still fits), none told to wait
    terminals = [e for e in publisher.events if e["type"] in ("done", "error")]
    assert len(terminals) == 24
    assert len({e["turnId"] for e in terminals}) == 24
    done = [e for e in terminals if e["type"] == "done"]
    refused = [e for e in terminals if e.get("code") == "turn_too_large"]
    assert (len(done), len(refused)) == (6, 18)
    assert all(e["needed"] == 300 and e["remaining"] < 300 for e in refused)
    assert not [e for e in refused if "resetsAt" in e]
    # AND every admitted reservation was settled, none is left behind
    item = raw_item(dynamodb)
    assert not [name for name in item if name.startswith("r#")]
    daily_input = sum(
        int(v["N"]) for k, v in item.items() if k.startswith("d#") and k.endswith("#i")
    )
    assert daily_input == 1800 <= FREE.daily_input_tokens


def test_concurrent_turns_that_fail_release_and_never_push_usage_past_the_limit(dynamodb):
    # GIVEN 24 simultaneous turns, every other one failing before any output
    prompts = [PROMPT if i % 2 else "FAIL" + PROMPT[4:] for i in range(24)]
    publisher = ListPublisher()
    concurrent_turns(dynamodb, prompts, publisher)

    terminals = [e for e in publisher.events if e["type"] in ("done", "error")]
    assert len(terminals) == 24
    done = [e for e in terminals if e["type"] == "done"]
    failed = [e for e in terminals if e.get("code") == "model_throttled"]
    # THEN the settled usage is that of the admitted turns and within the limit
    item = raw_item(dynamodb)
    daily_input = sum(
        int(v["N"]) for k, v in item.items() if k.startswith("d#") and k.endswith("#i")
    )
    assert daily_input == 300 * len(done) <= FREE.daily_input_tokens
    assert 1 <= len(done) <= 6 and failed
    # AND the failed turns' reservations were all released
    assert not [name for name in item if name.startswith("r#")]


def test_a_reservation_sent_twice_is_recognised_as_admitted(dynamodb):
    # GIVEN a store whose first reservation write lands but whose answer is lost, so the same
    # write arrives again against the item read before (botocore's retry after a timeout)
    class AnswerLostOnce(DynamoTurnStore):
        lost = False

        def reserve(self, user_key, admission, expected, now):
            outcome = super().reserve(user_key, admission, expected, now)
            if self.lost:
                return outcome
            self.lost = True
            return super().reserve(user_key, admission, expected, now)

    # AND a user with room for this turn's 300 input tokens, but not for twice that
    import time

    store = DynamoTurnStore(lambda: dynamodb, "usage", "prepared")
    store.settle(f"user#{SUB}", None, TokenUsage(1500, 0), int(time.time()))
    publisher = ListPublisher()

    # WHEN a turn runs through it
    one_turn(AnswerLostOnce(lambda: dynamodb, "usage", "prepared"), publisher)

    # THEN the turn was admitted and answered once, and left no reservation behind
    assert [e["type"] for e in publisher.events] == ["delta", "done"]
    assert not [name for name in raw_item(dynamodb) if name.startswith("r#")]
    assert daily_input_tokens(raw_item(dynamodb)) == 1800


def test_a_reservation_whose_answer_never_comes_is_taken_back(dynamodb):
    # GIVEN a store whose reservation write lands but whose answer times out for good
    class AnswerNeverComes(DynamoTurnStore):
        def reserve(self, user_key, admission, expected, now):
            super().reserve(user_key, admission, expected, now)
            raise StoreUnavailable("update_item: ReadTimeoutError")

    publisher = ListPublisher()

    # WHEN a turn runs through it
    one_turn(AnswerNeverComes(lambda: dynamodb, "usage", "prepared"), publisher)

    # THEN the turn is refused as the usage store failed (fail closed), with no model call,
    # and the reservation that did land does not hold the user's headroom until it expires
    assert [(e["type"], e.get("code")) for e in publisher.events] == [
        ("error", "usage_unavailable")
    ]
    assert not [name for name in raw_item(dynamodb) if name.startswith("r#")]


def one_turn(store: DynamoTurnStore, publisher: ListPublisher) -> None:
    """Run one turn of ``PROMPT`` by the test user through ``store``."""

    turns = racing_door(store, publisher)
    turns.handle(
        InboundEvent(
            cognito_identity(), f"/{INBOUND}/{SUB}", [INBOUND, SUB], chat_payload(PROMPT), "r"
        )
    )


def test_concurrent_turns_at_the_edge_of_a_money_window_never_spend_past_it(dynamodb):
    # GIVEN a tier allowed $0.003 a day at Claude Haiku 4.5's price, and 24 turns of one user at
    # once, each settling 300 input and 1 output token ($0.0003355)
    price = ModelPrice(0.0011, 0.0055)
    tiers = StaticTiers(
        tier_config(
            price.to_document(), maxConcurrentTurns=100, requestsPerMinute=1000, dailyUsd=0.003
        )
    )
    publisher = ListPublisher()
    concurrent_turns(dynamodb, [PROMPT] * 24, publisher, tiers)

    terminals = [e for e in publisher.events if e["type"] in ("done", "error")]
    done = [e for e in terminals if e["type"] == "done"]
    refused = [e for e in terminals if e["type"] == "error"]
    # THEN every turn ended, some were refused on the money window, and what is stored is the
    # settled turns' cost exactly, within the allowance
    assert len(terminals) == 24 and done and refused
    assert {e["window"] for e in refused} == {"dailyUsd"}
    item = raw_item(dynamodb)
    spent = sum(int(v["N"]) for k, v in item.items() if k.startswith("d#") and k.endswith("#u"))
    assert spent == len(done) * price.cost_nano(300, 1)
    assert spent <= 3_000_000
    assert all(e["costUsd"] == 0.000336 for e in done)
    assert not [name for name in item if name.startswith("r#")]
