"""Chat turns through ``chat`` handlers: moto for DynamoDB, a recording HTTP endpoint for the
Events API, scripted model streams for the model."""

from __future__ import annotations

import json
import math
import re
import threading
from datetime import UTC, datetime
from typing import Any

import chat
import pytest
from gateway.contract import ErrorCode
from gateway.environment import FunctionEnvironment
from gateway.metering import Refusal, estimate_input_tokens, plan_turn
from gateway.providers import LocalModel
from gateway.usage import TokenUsage
from gateway.usage_store import DynamoTurnStore

from tests.functions.support import (
    INBOUND,
    OTHER_SUB,
    OUTBOUND,
    OWN_CHANNEL,
    SUB,
    Gateway,
    RecordedAnalytics,
    ScriptedModel,
    SettableClock,
    StaticTiers,
    assert_gap_free,
    charged_attributes,
    chat_payload,
    deltas,
    emf_blobs,
    follow_up,
    metric_values,
    prepare,
    publish_event,
    requests_counted,
    terminal,
    tier_config,
)
from tests.support.appsync import lambda_context

# -- a complete turn ----------------------------------------------------------------------------


def test_a_turn_streams_the_model_text_in_order_and_stores_its_usage(gateway, capsys):
    # GIVEN a model that streams 60 pieces and reports 11 input / 60 output tokens
    gateway.model = ScriptedModel([f"w{i} " for i in range(60)], usage=TokenUsage(11, 60))

    # WHEN the user publishes one chat event to their inbound channel
    events = gateway.run(chat_payload("Tell me something"))

    # THEN the deltas concatenate to the model's text, seq has no gaps, one done ends the turn
    assert deltas(events) == gateway.model.text
    assert_gap_free(events)
    assert {(e["conversationId"], e["turnId"]) for e in events} == {("c-1", "t-1")}
    done = terminal(events)
    assert done["type"] == "done"
    assert done["usage"] == {"inputTokens": 11, "outputTokens": 60}
    assert done["cached"] is False
    assert done["stopReason"] == "end_turn"
    assert done["modelId"] == "amazon.nova-micro-v1:0"
    assert done["limits"] == {
        "dailyInputTokens": {"used": 11, "allowed": 2000},
        "dailyOutputTokens": {"used": 60, "allowed": 4000},
        "monthlyInputTokens": {"used": 11, "allowed": 20000},
        "monthlyOutputTokens": {"used": 60, "allowed": 40000},
    }
    # AND the usage is settled into the user's item with no reservation left behind
    item = gateway.usage_item()
    assert not [k for k in item if k.startswith("r#")]
    settled = {
        k.split("#")[0] + "#" + k.split("#")[2]: int(v)
        for k, v in item.items()
        if k[:2] in ("d#", "m#")
    }
    assert settled == {"d#i": 11, "d#o": 60, "m#i": 11, "m#o": 60}
    # AND the model was asked for at most the tier's per-turn maximum
    assert gateway.model.requests[0].max_tokens == 512


def test_a_turn_costs_three_dynamodb_requests(gateway):
    gateway.run(chat_payload())
    assert gateway.calls.calls == ["BatchGetItem", "UpdateItem", "UpdateItem"]


def test_publishes_are_signed_batched_and_sent_to_the_callers_own_channel(gateway):
    gateway.model = ScriptedModel(["x" * 10] * 300)
    gateway.run(chat_payload())
    publishes = gateway.endpoint.publishes
    assert publishes and all(p.channel == OWN_CHANNEL for p in publishes)
    assert all(1 <= len(p.events) <= 5 for p in publishes)
    authorization = publishes[0].headers["authorization"]
    assert re.match(
        r"^AWS4-HMAC-SHA256 Credential=\w+/\d{8}/us-east-1/appsync/aws4_request, "
        r"SignedHeaders=[a-z;-]*host[a-z;-]*, Signature=[0-9a-f]{64}$",
        authorization,
    )
    assert "x-amz-date" in publishes[0].headers


def test_a_turn_leaves_one_analytics_record_and_emf_metrics(gateway, capsys):
    gateway.model = ScriptedModel(["a", "b"], usage=TokenUsage(7, 2, 3, 4))
    events = gateway.run(chat_payload())
    (record,) = gateway.analytics.records
    assert json.loads(record.to_json_line()).keys() == {
        "turn_id", "conversation_id", "user_id", "tier", "model_id", "outcome", "error_code",
        "cached", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
        "latency_ms", "first_token_ms", "events_published", "ts", "overrun_input_tokens",
        "overrun_output_tokens", "speculative_cancelled", "speculative_input_tokens", "cost_usd",
        "door",
    }  # fmt: skip
    assert record.door == "events"
    assert (record.user_id, record.tier, record.outcome, record.error_code) == (
        SUB, "free", "done", None,
    )  # fmt: skip
    assert (record.input_tokens, record.output_tokens) == (7, 2)
    assert (record.cache_read_tokens, record.cache_write_tokens) == (3, 4)
    assert record.events_published == len(events)
    assert len(record.ts) == len("2025-01-01 00:00:00.000")
    blobs = emf_blobs(capsys.readouterr().out)
    model = {"modelId": "amazon.nova-micro-v1:0"}
    assert metric_values(blobs, "InputTokens", **model) == [7]
    assert metric_values(blobs, "OutputTokens", **model) == [2]
    assert len(metric_values(blobs, "TurnLatency", **model)) == 1
    assert len(metric_values(blobs, "FirstTokenLatency", **model)) == 1
    assert all(b["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AiGateway" for b in blobs)
    assert metric_values(blobs, "Errors") == []
    # the same turn under the door dimension alone, beside the model's
    door = {"door": "events"}
    assert metric_values(blobs, "Turns", **door) == [1]
    assert metric_values(blobs, "OutputTokens", **door) == [2]
    assert len(metric_values(blobs, "FirstTokenLatency", **door)) == 1


def test_cache_read_and_write_tokens_are_recorded_apart_from_the_limits(gateway):
    gateway.model = ScriptedModel(["a"], usage=TokenUsage(7, 1, 30, 40))
    gateway.run(chat_payload())
    item = gateway.usage_item()
    month = [k for k in item if k.startswith("c#")]
    assert sorted(month)[0].endswith("#r") and int(item[sorted(month)[0]]) == 30
    assert int(item[sorted(month)[1]]) == 40


# -- prepared responses -------------------------------------------------------------------------


def test_a_prepared_response_is_streamed_without_a_model_call_or_a_charge(gateway, capsys):
    prepare(gateway, "What is the gateway?", "The gateway is one governed door to AI models.")
    events = gateway.run(chat_payload("  what IS the   gateway ?! "))
    assert deltas(events) == "The gateway is one governed door to AI models."
    done = terminal(events)
    assert done["cached"] is True
    assert done["usage"] == {"inputTokens": 0, "outputTokens": 0}
    assert done["limits"]["dailyInputTokens"] == {"used": 0, "allowed": 2000}
    assert_gap_free(events)
    assert gateway.model.requests == []
    # one write counts the request and its turn id (no reservation: no tokens)
    assert gateway.calls.calls == ["BatchGetItem", "UpdateItem"]
    assert charged_attributes(gateway.usage_item()) == {}
    assert metric_values(emf_blobs(capsys.readouterr().out), "CacheHits") == [1]
    assert gateway.analytics.records[0].cached is True


def test_the_models_own_prepared_response_wins_over_the_any_model_one(gateway):
    prepare(gateway, "hello", "generic answer")
    prepare(gateway, "hello", "micro answer", scope="amazon.nova-micro-v1:0")
    assert deltas(gateway.run(chat_payload("Hello!"))) == "micro answer"


def test_no_prepared_response_once_the_conversation_has_history(gateway):
    prepare(gateway, "hello", "generic answer")
    messages = [
        {"role": "user", "content": [{"text": "hi"}]},
        {"role": "assistant", "content": [{"text": "hi!"}]},
        {"role": "user", "content": [{"text": "hello"}]},
    ]
    events = gateway.run(chat_payload(messages=messages))
    assert terminal(events)["cached"] is False
    assert deltas(events) == gateway.model.text


def test_no_prepared_response_for_a_tier_without_cache(gateway):
    prepare(gateway, "hello", "generic answer")
    events = gateway.run(chat_payload("hello"), groups=["pro"])
    assert terminal(events)["cached"] is False


# -- refusals -----------------------------------------------------------------------------------


def test_an_over_limit_user_is_refused_without_a_model_call_or_a_write(gateway):
    # GIVEN a user who spent the whole daily input allowance ten minutes ago
    gateway.run(chat_payload())  # creates the item
    item_before = gateway.usage_item()
    bucket = max(int(k.split("#")[1]) for k in item_before if k.startswith("d#"))
    gateway.dynamodb.update_item(
        TableName="usage",
        Key={"pk": {"S": f"user#{SUB}"}},
        UpdateExpression="SET #b = :n",
        ExpressionAttributeNames={"#b": f"d#{bucket}#i"},
        ExpressionAttributeValues={":n": {"N": "2000"}},
    )
    before = gateway.usage_item()
    gateway.model.requests.clear()
    gateway.endpoint.publishes.clear()
    gateway.calls.reset()

    events = gateway.run(chat_payload(turnId="t-2"))

    error = terminal(events)
    assert error["code"] == "limit_exceeded"
    assert error["window"] == "dailyInputTokens"
    assert error["resetsAt"].endswith("Z")
    assert error["retryable"] is False
    assert error["requestId"] == "req-0001"
    assert error["limits"]["dailyInputTokens"]["used"] >= 2000
    assert gateway.model.requests == []
    assert gateway.calls.calls == ["BatchGetItem"]
    assert gateway.usage_item() == before


def test_a_model_outside_the_tier_is_refused_and_nothing_is_charged(gateway):
    events = gateway.run(chat_payload(modelId="amazon.nova-pro-v1:0"))
    error = terminal(events)
    assert error["code"] == "model_not_allowed"
    assert error["retryable"] is False
    assert "amazon.nova-pro-v1:0" in error["message"]
    assert gateway.model.requests == []
    assert gateway.calls.calls == ["UpdateItem"]  # the refused request is counted
    assert charged_attributes(gateway.usage_item()) == {}
    assert requests_counted(gateway.usage_item()) == 1


def test_a_higher_tier_group_may_use_its_models(gateway):
    events = gateway.run(chat_payload(modelId="amazon.nova-pro-v1:0"), groups=["free", "pro"])
    assert terminal(events)["type"] == "done"
    assert gateway.model.requests[0].max_tokens == 2048
    assert gateway.model.requests[0].guardrail.identifier == "abc123guard"


HUGE = "x" * 16_001


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("not json at all", id="not-json"),
        pytest.param(["a", "list"], id="a-list"),
        pytest.param({"conversationId": "c-1"}, id="no-messages"),
        pytest.param(chat_payload(messages=[]), id="empty-messages"),
        pytest.param(
            chat_payload(messages=[{"role": "assistant", "content": [{"text": "hi"}]}]),
            id="last-not-user",
        ),
        pytest.param(
            chat_payload(
                messages=[
                    {"role": r, "content": [{"text": "hi"}]} for r in ["user", "assistant"] * 20
                ]
                + [{"role": "user", "content": [{"text": "hi"}]}]
            ),
            id="too-many-messages",
        ),
        pytest.param(chat_payload(HUGE), id="too-much-text"),
        pytest.param(chat_payload("   "), id="blank-text"),
        pytest.param(
            chat_payload(messages=[{"role": "user", "content": [{"image": {"format": "png"}}]}]),
            id="image-block",
        ),
        pytest.param(
            chat_payload(
                messages=[
                    {"role": "user", "content": [{"text": "a"}]},
                    {"role": "user", "content": [{"text": "b"}]},
                ]
            ),
            id="roles-not-alternating",
        ),
        pytest.param(
            chat_payload(messages=[{"role": "system", "content": [{"text": "obey"}]}]),
            id="unknown-role",
        ),
        pytest.param(chat_payload(turnId="t" * 65), id="turn-id-too-long"),
        pytest.param(chat_payload(conversationId="c/../../x"), id="conversation-id-odd"),
        pytest.param(chat_payload(modelId=""), id="empty-model-id"),
    ],
)
def test_a_bad_payload_gets_invalid_request_and_nothing_is_charged(gateway, payload):
    events = gateway.run(payload)
    error = terminal(events)
    assert error["code"] == "invalid_request"
    assert error["retryable"] is False
    assert error["seq"] == 0 and len(events) == 1
    assert "Traceback" not in error["message"] and error["message"]
    assert gateway.model.requests == []
    assert charged_attributes(gateway.usage_item()) == {}
    assert requests_counted(gateway.usage_item()) == 1


def test_an_invalid_request_echoes_the_valid_ids_it_carried(gateway):
    events = gateway.run({"conversationId": "c-9", "turnId": "t-9", "messages": "nope"})
    assert (events[0]["conversationId"], events[0]["turnId"]) == ("c-9", "t-9")


def test_a_payload_naming_another_user_changes_nothing(gateway):
    gateway.run(chat_payload(userId=OTHER_SUB, sub=OTHER_SUB, identity={"sub": OTHER_SUB}))
    assert gateway.endpoint.events(f"/{OUTBOUND}/{OTHER_SUB}") == []
    assert gateway.usage_item(OTHER_SUB) is None
    assert gateway.usage_item(SUB) is not None


@pytest.mark.parametrize(
    "path",
    [
        f"/{INBOUND}/{OTHER_SUB}",
        f"/{INBOUND}/*",
        f"/{INBOUND}/{SUB}/extra",
        f"/{OUTBOUND}/{SUB}",
        f"/{INBOUND}",
        f"/{INBOUND}/{SUB.upper()}",
    ],
)
def test_publishing_to_a_channel_one_does_not_own_is_refused_on_ones_own_channel(gateway, path):
    gateway.handler()(publish_event(chat_payload(), path=path), lambda_context())
    events = gateway.endpoint.events()
    assert [e["code"] for e in events] == ["unauthorized"]
    assert all(p.channel == OWN_CHANNEL for p in gateway.endpoint.publishes)
    assert gateway.model.requests == []
    assert charged_attributes(gateway.usage_item()) == {}
    assert requests_counted(gateway.usage_item()) == 1


def test_a_publish_without_a_user_identity_is_dropped(gateway):
    event = publish_event(chat_payload())
    event["identity"] = None
    gateway.handler()(event, lambda_context())
    assert gateway.endpoint.publishes == []
    assert gateway.model.requests == []


# -- faults -------------------------------------------------------------------------------------


def test_a_throttled_model_ends_the_turn_with_a_retryable_error_and_releases(gateway, capsys):
    gateway.model = ScriptedModel(fail_before=ErrorCode.MODEL_THROTTLED)
    events = gateway.run(chat_payload())
    error = terminal(events)
    assert (error["code"], error["retryable"]) == ("model_throttled", True)
    assert gateway.calls.calls == ["BatchGetItem", "UpdateItem", "UpdateItem"]
    item = gateway.usage_item()
    assert not [k for k in item if k.startswith(("r#", "d#", "m#"))]
    blobs = emf_blobs(capsys.readouterr().out)
    assert metric_values(blobs, "ModelThrottles", modelId="amazon.nova-micro-v1:0") == [1]
    assert metric_values(blobs, "Errors", code="model_throttled") == [1]


def test_a_stream_that_breaks_midway_charges_what_was_produced(gateway):
    gateway.model = ScriptedModel(["Hello", ", ", "wor", "ld"], fail_after=2)
    events = gateway.run(chat_payload("Say hello"))
    assert deltas(events) == "Hello, "
    error = terminal(events)
    assert (error["code"], error["retryable"]) == ("model_error", True)
    item = gateway.usage_item()
    assert not [k for k in item if k.startswith("r#")]
    (month_in,) = [v for k, v in item.items() if k.startswith("m#") and k.endswith("#i")]
    (month_out,) = [v for k, v in item.items() if k.startswith("m#") and k.endswith("#o")]
    assert int(month_in) == estimate_input_tokens(["Say hello"])
    assert int(month_out) == math.ceil(len("Hello, ") / 4)
    assert gateway.analytics.records[0].output_tokens == int(month_out)


def test_the_fallback_model_answers_when_the_first_fails_before_any_delta(gateway, capsys):
    gateway.model = ScriptedModel(
        ["fine"], fail_before=ErrorCode.MODEL_THROTTLED, fail_models={"amazon.nova-pro-v1:0"}
    )
    events = gateway.run(chat_payload(), groups=["pro"])
    done = terminal(events)
    assert done["modelId"] == "amazon.nova-lite-v1:0"
    assert [r.model_id for r in gateway.model.requests] == [
        "amazon.nova-pro-v1:0",
        "amazon.nova-lite-v1:0",
    ]
    # AND the throttle is counted against the model that throttled, the tokens against the other
    blobs = emf_blobs(capsys.readouterr().out)
    assert metric_values(blobs, "ModelThrottles", modelId="amazon.nova-pro-v1:0") == [1]
    assert metric_values(blobs, "ModelThrottles", modelId="amazon.nova-lite-v1:0") == []
    assert metric_values(blobs, "OutputTokens", modelId="amazon.nova-lite-v1:0") == [1]


def test_no_fallback_after_the_first_delta(gateway):
    gateway.model = ScriptedModel(["a", "b", "c"], fail_after=1)
    events = gateway.run(chat_payload(), groups=["pro"])
    assert terminal(events)["code"] == "model_error"
    assert len(gateway.model.requests) == 1


def test_an_unreadable_usage_store_refuses_the_turn_by_default(gateway, capsys):
    gateway.env = FunctionEnvironment(**{**gateway.env.__dict__})
    handler = gateway.handler(store=DynamoTurnStore(lambda: gateway.dynamodb, "missing-table"))
    handler(publish_event(chat_payload()), lambda_context())
    error = terminal(gateway.endpoint.events(OWN_CHANNEL))
    assert (error["code"], error["retryable"]) == ("usage_unavailable", True)
    assert gateway.model.requests == []
    assert metric_values(emf_blobs(capsys.readouterr().out), "UsageStoreFailures") == [1]


def test_a_stack_may_meter_fail_open(gateway):
    gateway.env = FunctionEnvironment(**{**gateway.env.__dict__, "metering_fail_open": True})
    handler = gateway.handler(store=DynamoTurnStore(lambda: gateway.dynamodb, "missing-table"))
    handler(publish_event(chat_payload()), lambda_context())
    assert terminal(gateway.endpoint.events(OWN_CHANNEL))["type"] == "done"
    assert gateway.model.requests[0].max_tokens == 512


def test_a_lost_analytics_record_never_breaks_the_turn(gateway, capsys):
    gateway.analytics = RecordedAnalytics(fail=True)
    events = gateway.run(chat_payload())
    assert terminal(events)["type"] == "done"
    assert metric_values(emf_blobs(capsys.readouterr().out), "AnalyticsFailures") == [1]


def test_publishing_is_retried_on_throttling_and_server_errors(gateway):
    gateway.endpoint.scripted_statuses = [503, 429]
    events = gateway.run(chat_payload())
    assert terminal(events)["type"] == "done"
    assert deltas(events) == gateway.model.text


def test_usage_is_settled_even_when_nothing_can_be_published(gateway, capsys):
    gateway.endpoint.scripted_statuses = [500] * 100
    gateway.model = ScriptedModel(["a"] * 20, usage=TokenUsage(9, 20))
    gateway.run(chat_payload())
    item = gateway.usage_item()
    assert sorted(int(v) for k, v in item.items() if k.startswith("m#")) == [9, 20]
    assert not [k for k in item if k.startswith("r#")]
    assert metric_values(emf_blobs(capsys.readouterr().out), "PublishFailures")


def test_several_events_in_one_invocation_are_separate_turns(gateway):
    gateway.run(chat_payload(turnId="t-a"), chat_payload(turnId="t-b"))
    events = gateway.endpoint.events(OWN_CHANNEL)
    for turn_id in ("t-a", "t-b"):
        turn = [e for e in events if e["turnId"] == turn_id]
        assert_gap_free(turn)
        assert terminal(turn)["type"] == "done"


def test_a_turn_without_a_turn_id_gets_one_from_the_gateway(gateway):
    payload = chat_payload()
    del payload["turnId"]
    events = gateway.run(payload)
    assert len({e["turnId"] for e in events}) == 1
    assert events[0]["turnId"].startswith("g-")


def test_the_tier_limits_come_from_the_tier_source_at_turn_time(gateway):
    gateway.tiers = StaticTiers(tier_config(dailyOutputTokens=600, maxOutputTokensPerTurn=512))
    gateway.dynamodb.put_item(
        TableName="usage",
        Item={"pk": {"S": f"user#{SUB}"}, "version": {"N": "1"}},
    )
    gateway.run(chat_payload())
    assert gateway.model.requests[0].max_tokens == 512
    gateway.model.requests.clear()
    gateway.run(chat_payload(turnId="t-2"))
    # 600 - the 4 output tokens of the first turn leave 596, still more than 512
    assert gateway.model.requests[0].max_tokens == 512
    # WHEN the operator lowers the daily output allowance to 515
    gateway.tiers.config = tier_config(dailyOutputTokens=515, maxOutputTokensPerTurn=512)
    gateway.model.requests.clear()
    gateway.run(chat_payload(turnId="t-3"))
    # THEN the next turn may produce only what is left of it
    assert gateway.model.requests[0].max_tokens == 515 - 8


# -- time and concurrency -----------------------------------------------------------------------


def test_a_crashed_turns_reservation_stops_counting_when_it_expires(gateway):
    # GIVEN a reservation left by a crashed invocation that holds the whole daily input allowance
    clock = SettableClock(1_741_000_000)
    gateway.dynamodb.put_item(
        TableName="usage",
        Item={
            "pk": {"S": f"user#{SUB}"},
            "version": {"N": "4"},
            "r#crashed": {
                "M": {
                    "i": {"N": "2000"},
                    "o": {"N": "512"},
                    "exp": {"N": str(1_741_000_000 + 900)},
                    "b": {"N": str(1_741_000_000 - 1_741_000_000 % 600)},
                    "m": {"S": "2025-03"},
                }
            },
        },
    )
    handler = gateway.handler(clock=clock)
    handler(publish_event(chat_payload(turnId="t-1")), lambda_context())
    assert terminal(gateway.endpoint.events(OWN_CHANNEL))["code"] == "limit_exceeded"

    # WHEN its expiry has passed
    clock.wall += 901
    gateway.endpoint.publishes.clear()
    handler(publish_event(chat_payload(turnId="t-2")), lambda_context())

    # THEN the next turn is admitted and prunes it
    assert terminal(gateway.endpoint.events(OWN_CHANNEL))["type"] == "done"
    assert "r#crashed" not in gateway.usage_item()


def test_a_new_utc_month_brings_a_new_monthly_allowance(gateway):
    # GIVEN a user who spent the whole March output allowance
    clock = SettableClock(datetime(2025, 3, 31, 23, 59, tzinfo=UTC).timestamp())
    gateway.dynamodb.put_item(
        TableName="usage",
        Item={"pk": {"S": f"user#{SUB}"}, "version": {"N": "1"}, "m#2025-03#o": {"N": "40000"}},
    )
    handler = gateway.handler(clock=clock)
    handler(publish_event(chat_payload(turnId="t-1")), lambda_context())
    error = terminal(gateway.endpoint.events(OWN_CHANNEL))
    assert (error["window"], error["resetsAt"]) == ("monthlyOutputTokens", "2025-04-01T00:00:00Z")

    # WHEN April starts THEN the user may chat again
    clock.wall = datetime(2025, 4, 1, tzinfo=UTC).timestamp()
    gateway.endpoint.publishes.clear()
    handler(publish_event(chat_payload(turnId="t-2")), lambda_context())
    assert terminal(gateway.endpoint.events(OWN_CHANNEL))["type"] == "done"


def test_concurrent_invocations_of_one_handler_never_cross_users(gateway):
    # GIVEN one warm handler invoked from 16 threads at once, each for a different user
    gateway.model = LocalModel(400)
    handler = gateway.handler(provider=gateway.model)
    subs = [f"{i:08d}-aaaa-4bbb-8ccc-{i:012d}" for i in range(16)]
    start = threading.Barrier(len(subs))

    def invoke(sub: str) -> None:
        start.wait()
        payload = chat_payload(f"[tokens=30] question from {sub[:8]}", turnId=f"t-{sub[:8]}")
        handler(publish_event(payload, sub=sub), lambda_context(f"req-{sub[:8]}"))

    threads = [threading.Thread(target=invoke, args=(sub,)) for sub in subs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # THEN each user's channel holds exactly their own turn, complete and in order
    for sub in subs:
        events = gateway.endpoint.events(f"/{OUTBOUND}/{sub}")
        assert {e["turnId"] for e in events} == {f"t-{sub[:8]}"}
        assert_gap_free(events)
        done = terminal(events)
        assert done["type"] == "done" and done["usage"]["outputTokens"] == 30
        assert sub[:8] in deltas(events)  # the local model echoes the prompt it answered
        assert gateway.usage_item(sub) is not None


@pytest.mark.parametrize(
    "event",
    [
        {},
        [],
        {"info": {"operation": "PUBLISH"}, "events": [{"id": "1", "payload": {}}]},
        {"info": {"channel": {"path": f"/{INBOUND}/{SUB}"}, "operation": "PUBLISH"}},
    ],
)
def test_a_malformed_invocation_is_logged_and_answers_nobody(gateway, event):
    assert gateway.handler()(event, lambda_context()) is None
    assert gateway.endpoint.publishes == []
    assert gateway.model.requests == []


def test_a_channel_path_no_route_matches_is_still_refused_on_ones_own_channel(gateway):
    gateway.handler()(publish_event(chat_payload(), path=f"/{INBOUND}/{SUB}\n"), lambda_context())
    assert [e["code"] for e in gateway.endpoint.events(OWN_CHANNEL)] == ["unauthorized"]
    assert gateway.model.requests == []


# -- a warm function's known usage --------------------------------------------------------------


def reserve_elsewhere(gateway: Gateway, reservation_id: str) -> Any:
    """Another function instance admits a turn of the same user (its reservation stays live)."""
    store = DynamoTurnStore(lambda: gateway.dynamodb, "usage", "prepared")
    now = int(datetime.now(UTC).timestamp())
    seen = store.read(f"user#{SUB}", ()).usage
    plan = plan_turn(seen, gateway.tiers.current().tiers["free"], now, 10, reservation_id)
    assert not isinstance(plan, Refusal)
    assert store.reserve(f"user#{SUB}", plan, seen, now) is None
    return store, plan


def test_a_warm_functions_next_turn_reserves_without_reading_the_usage_item(gateway):
    read_tables: list[list[str]] = []
    gateway.dynamodb.meta.events.register(
        "provide-client-params.dynamodb.BatchGetItem",
        lambda params, **_: read_tables.append(sorted(params["RequestItems"])),
    )
    runtime = gateway.runtime()
    handler = chat.make_handler(runtime)
    handler(publish_event(chat_payload()), lambda_context())
    assert gateway.calls.calls == ["BatchGetItem", "UpdateItem", "UpdateItem"]

    # WHEN the same user's next turn reaches the same warm function
    gateway.calls.reset()
    handler(publish_event(follow_up("t-2")), lambda_context())
    # THEN it reserves and settles: two requests, no read
    assert gateway.calls.calls == ["UpdateItem", "UpdateItem"]

    # AND once the function has its index of prepared responses (none here), a conversation's
    # first message reads nothing either
    runtime.core().admission.prepared_index.refresh()
    gateway.calls.reset()
    handler(publish_event(chat_payload(turnId="t-3")), lambda_context())
    assert gateway.calls.calls == ["UpdateItem", "UpdateItem"]
    assert read_tables == [["prepared", "usage"]]

    # AND every turn was metered: three settled turns, no reservation left
    events = gateway.endpoint.events(OWN_CHANNEL)
    assert [e["type"] for e in events if e["type"] in ("done", "error")] == ["done"] * 3
    item = gateway.usage_item()
    assert not [k for k in item if k.startswith("r#")]
    (month_out,) = [v for k, v in item.items() if k.startswith("m#") and k.endswith("#o")]
    assert int(month_out) == 3 * len(gateway.model.pieces)


def test_a_kept_snapshot_gone_out_of_date_never_admits_past_a_limit(gateway):
    # GIVEN a warm function that knows the user's item after a turn (4 of 516 tokens used)
    gateway.tiers = StaticTiers(tier_config(dailyOutputTokens=516, maxOutputTokensPerTurn=512))
    handler = gateway.handler()
    handler(publish_event(chat_payload()), lambda_context())
    # AND another instance that has since admitted a turn holding the remaining 512
    reserve_elsewhere(gateway, "elsewhere")
    gateway.calls.reset()
    gateway.model.requests.clear()
    gateway.endpoint.publishes.clear()

    # WHEN the user's next turn plans on what the warm function knew (room for 512 more)
    handler(publish_event(follow_up("t-2")), lambda_context())

    # THEN the reservation, conditioned on the item's version, wrote nothing and brought back
    # the current item, on which the turn is refused: no model call, nothing more reserved
    error = terminal(gateway.endpoint.events(OWN_CHANNEL))
    assert (error["code"], error["window"]) == ("limit_exceeded", "dailyOutputTokens")
    assert gateway.model.requests == []
    assert gateway.calls.calls == ["UpdateItem"]
    assert [k for k in gateway.usage_item() if k.startswith("r#")] == ["r#elsewhere"]


def test_a_refusal_planned_on_a_kept_snapshot_is_confirmed_by_a_fresh_read(gateway):
    # GIVEN a warm function whose last look at the item showed another instance's turn holding
    # the user's remaining daily output
    gateway.tiers = StaticTiers(tier_config(dailyOutputTokens=516, maxOutputTokensPerTurn=512))
    handler = gateway.handler()
    handler(publish_event(chat_payload()), lambda_context())
    store, plan = reserve_elsewhere(gateway, "elsewhere")
    handler(publish_event(follow_up("t-2")), lambda_context())
    assert gateway.endpoint.events(OWN_CHANNEL)[-1]["code"] == "limit_exceeded"
    # AND that turn has since failed and released its reservation
    store.release(f"user#{SUB}", plan.reservation.id)
    gateway.calls.reset()
    gateway.model.requests.clear()
    gateway.endpoint.publishes.clear()

    # WHEN the user's next turn arrives at the warm function, which would refuse it
    handler(publish_event(follow_up("t-3")), lambda_context())

    # THEN the refusal is checked against a fresh read of the item, and the turn is admitted
    assert terminal(gateway.endpoint.events(OWN_CHANNEL))["type"] == "done"
    assert gateway.calls.calls == ["BatchGetItem", "UpdateItem", "UpdateItem"]
    # (the whole headroom: 516 less the 4 tokens of the first turn)
    assert gateway.model.requests[0].max_tokens == 512
