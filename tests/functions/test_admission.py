"""Admission through the chat handler (moto DynamoDB, a recording events endpoint): request
rates, concurrent turns, duplicate turn ids, the capped charge and the tier's stream cadence."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from gateway.rates import rate_bucket
from gateway.token_bound import input_token_bound
from gateway.usage import RESERVATION_PREFIX, TokenUsage

from tests.functions.support import (
    OWN_CHANNEL,
    ScriptedModel,
    SettableClock,
    StaticTiers,
    assert_gap_free,
    charged_attributes,
    chat_payload,
    deltas,
    emf_blobs,
    metric_values,
    publish_event,
    requests_counted,
    terminal,
    tier_config,
)
from tests.support.appsync import lambda_context

NOW = 1_795_000_003.0


def by_turn(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    turns: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        turns.setdefault(event["turnId"], []).append(event)
    return turns


@pytest.fixture
def limited(gateway):
    """The gateway with a free tier of 3 requests a minute and 2 turns at a time, at NOW."""
    gateway.tiers = StaticTiers(tier_config(requestsPerMinute=3, maxConcurrentTurns=2))
    gateway.clock = SettableClock(NOW)
    return gateway


def reservations(item: dict[str, Any] | None) -> list[str]:
    return [name for name in item or {} if name.startswith(RESERVATION_PREFIX)]


def run(gateway, *payloads: Any) -> list[dict[str, Any]]:
    handler = gateway.handler(clock=gateway.clock)
    handler(publish_event(*payloads), lambda_context())
    return gateway.endpoint.events(OWN_CHANNEL)


def test_a_turn_over_the_request_rate_is_refused_with_rate_limited(limited):
    # GIVEN three turns in this minute
    for i in range(3):
        assert (
            terminal(by_turn(run(limited, chat_payload(turnId=f"t-{i}")))[f"t-{i}"])["type"]
            == "done"
        )
    # WHEN a fourth arrives
    events = by_turn(run(limited, chat_payload(turnId="t-3")))["t-3"]
    # THEN it is refused, retryable, with when it may be retried, and nothing is charged for it
    error = terminal(events)
    assert (error["code"], error["retryable"], error["limit"]) == (
        "rate_limited",
        True,
        "requestsPerMinute",
    )
    assert error["resetsAt"] == time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(rate_bucket(int(NOW)) + 60)
    )
    assert len(limited.model.requests) == 3
    # AND once the first request has left the trailing minute, a turn is admitted again
    limited.clock.wall = rate_bucket(int(NOW)) + 60
    assert terminal(by_turn(run(limited, chat_payload(turnId="t-4")))["t-4"])["type"] == "done"


def test_invalid_events_count_toward_the_rate_with_one_write_each(limited):
    # GIVEN three invalid events, each answered invalid_request and counted by one write
    limited.calls.reset()
    for _ in range(3):
        run(limited, {"conversationId": "c-1", "messages": "nope"})
    assert limited.calls.calls == ["UpdateItem"] * 3
    assert requests_counted(limited.usage_item()) == 3
    assert charged_attributes(limited.usage_item()) == {}
    # WHEN a valid turn follows in the same minute
    events = by_turn(run(limited, chat_payload(turnId="t-ok")))["t-ok"]
    # THEN it is refused for the rate
    assert terminal(events)["code"] == "rate_limited"


def test_a_valid_turn_counts_toward_the_rate_in_its_own_admission_write(limited):
    limited.calls.reset()
    run(limited, chat_payload())
    # read (cold function), admission (reservation + request + turn id), settle
    assert limited.calls.calls == ["BatchGetItem", "UpdateItem", "UpdateItem"]
    assert requests_counted(limited.usage_item()) == 1


def test_more_concurrent_turns_than_the_tier_allows_are_refused(limited):
    # GIVEN a model that holds each turn open until released
    release = threading.Event()

    entered: list[int] = []

    class HeldModel(ScriptedModel):
        def stream(self, request):
            entered.append(1)
            release.wait(10)
            yield from super().stream(request)

    limited.model = HeldModel()
    limited.tiers = StaticTiers(tier_config(requestsPerMinute=100, maxConcurrentTurns=2))
    # Two turns admitted one after the other, each held in its model call. (They are started
    # one at a time because moto, unlike DynamoDB, does not apply two conditional writes that
    # arrive at the same moment atomically; and a started model call alone proves nothing: a
    # warm function may open the stream while its admission is still in flight.)
    threads = []
    for i in range(2):
        thread = threading.Thread(target=run, args=(limited, chat_payload(turnId=f"t-{i}")))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            len(entered) == i + 1 and len(reservations(limited.usage_item())) == i + 1
        ):
            time.sleep(0.01)
    # WHEN a third turn arrives while both run
    third = by_turn(run(limited, chat_payload(turnId="t-3")))["t-3"]
    release.set()
    for thread in threads:
        thread.join(10)
    # THEN it is refused with the concurrency limit; the two running turns complete
    error = terminal(third)
    assert (error["code"], error["limit"], error["retryable"]) == (
        "rate_limited",
        "maxConcurrentTurns",
        True,
    )
    turns = by_turn(limited.endpoint.events(OWN_CHANNEL))
    assert [terminal(turns[f"t-{i}"])["type"] for i in range(2)] == ["done", "done"]


def test_a_duplicate_turn_id_is_neither_run_nor_charged_again(limited):
    # GIVEN a turn that ran
    run(limited, chat_payload(turnId="t-1"))
    charged = charged_attributes(limited.usage_item())
    # WHEN the same publish arrives again (a client retry)
    events = run(limited, chat_payload(turnId="t-1"))
    # THEN the model ran once and nothing more was charged
    assert len(limited.model.requests) == 1
    assert charged_attributes(limited.usage_item()) == charged
    # AND the original turn's events are untouched: seq 0..n, one terminal
    turns = by_turn(events)
    assert_gap_free(turns["t-1"])
    assert terminal(turns["t-1"])["type"] == "done"
    # AND the duplicate is answered under a turn id of its own, naming the original
    (other,) = [t for t in turns if t != "t-1"]
    notice = terminal(turns[other])
    assert notice["seq"] == 0 and other.startswith("g-")
    assert (notice["code"], notice["retryable"], notice["duplicateOf"]) == (
        "duplicate_turn",
        False,
        "t-1",
    )


def test_a_turn_id_may_be_used_again_after_fifteen_minutes(limited):
    run(limited, chat_payload(turnId="t-1"))
    limited.clock.wall = NOW + 901
    events = by_turn(run(limited, chat_payload(turnId="t-1")))["t-1"]
    assert [e["type"] for e in events].count("done") == 2
    assert len(limited.model.requests) == 2


def test_a_model_reporting_more_than_the_bound_is_charged_only_what_was_reserved(gateway, capsys):
    # GIVEN a model that reports far more input than any tokenizer could count for the text
    prompt = "Hello there"
    gateway.model = ScriptedModel(["Hi"], usage=TokenUsage(5_000, 1))
    # WHEN the turn settles
    events = gateway.run(chat_payload(prompt))
    # THEN the charge stops at the reservation, and the excess is counted, not stored
    bound = input_token_bound([prompt])
    assert terminal(events)["usage"] == {"inputTokens": bound, "outputTokens": 1}
    item = gateway.usage_item()
    assert sum(int(v) for k, v in item.items() if k.startswith("d#") and k.endswith("#i")) == bound
    blobs = emf_blobs(capsys.readouterr().out)
    assert metric_values(blobs, "MeteringOverrunTokens") == [5_000 - bound]
    record = gateway.analytics.records[0]
    assert (record.input_tokens, record.overrun_input_tokens) == (bound, 5_000 - bound)


def test_a_tiers_stream_cadence_sets_the_relays_flush_interval(gateway):
    # GIVEN a model streaming 40 pieces, 5 ms apart, on a tier that flushes every 10 s
    class Paced(ScriptedModel):
        def stream(self, request):
            for part in super().stream(request):
                time.sleep(0.005)
                yield part

    gateway.model = Paced([f"w{i} " for i in range(40)])
    gateway.tiers = StaticTiers(tier_config(streamFlushMs=5000))
    events = gateway.run(chat_payload())
    # THEN the first delta went at once and the rest waited for the end (one more delta)
    assert [e["type"] for e in events] == ["delta", "delta", "done"]
    assert deltas(events) == gateway.model.text


def test_a_flood_of_refused_events_never_grows_the_usage_item(limited):
    # GIVEN refused events arriving every 10 seconds for five minutes
    for step in range(30):
        limited.clock.wall = NOW + 10 * step
        run(limited, {"conversationId": "c-1", "messages": "nope"})
    # THEN only the buckets of the last two minutes are left on the item
    buckets = [k for k in limited.usage_item() if k.startswith("q#")]
    assert 6 <= len(buckets) <= 12
