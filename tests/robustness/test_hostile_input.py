"""Hostile inputs found by a black-box trial, each reproduced through the real chat handler: deep
JSON, lone UTF-16 surrogates, ids with a trailing newline, unpublishable model output."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from gateway.providers import Completion, ModelRequest, TextDelta

from tests.functions.support import chat_payload, cognito_identity
from tests.robustness.cases import ran
from tests.robustness.hostile_gateway import (
    HostileGateway,
    aws_in_process,
    new_sub,
    own_channel,
    turns_of,
)
from tests.support.appsync import appsync_event

DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture
def aws() -> Iterator[Any]:
    with aws_in_process() as client:
        yield client


def _turn(text: str = "Hello", turn_id: str = "t-1", **fields: Any) -> dict[str, Any]:
    return chat_payload(text, turnId=turn_id, **fields)


def test_deeply_nested_json_gets_its_error_and_the_events_after_it_still_run(aws) -> None:
    ran("hostile: scripted")
    # GIVEN one invocation: a JSON string nested 5000 deep, then two valid turns
    gateway = HostileGateway()
    sub = new_sub()

    # WHEN the handler runs it
    events = gateway.publish(sub, DEEP, _turn(turn_id="t-2"), _turn(turn_id="t-3"))

    # THEN each of the three events got exactly one terminal, in order
    turns = turns_of(events)
    assert [t[-1]["type"] for t in turns] == ["error", "done", "done"]
    assert turns[0][-1]["code"] == "invalid_request"
    assert "nested too deeply" in turns[0][-1]["message"]
    assert [t[-1]["turnId"] for t in turns[1:]] == ["t-2", "t-3"]


def test_deep_json_inside_an_object_with_a_turn_id_still_gets_invalid_request(aws) -> None:
    ran("hostile: scripted")
    gateway = HostileGateway()
    sub = new_sub()
    payload = '{"conversationId": "c-1", "turnId": "t-9", "x": ' + DEEP + "}"
    [turn] = turns_of(gateway.publish(sub, payload))
    assert turn[-1]["code"] == "invalid_request"
    assert turn[-1]["seq"] == 0


def _strict_utf8_log() -> tuple[Logger, io.BytesIO]:
    """A Powertools logger writing to a strict UTF-8 stream, as a Lambda's stdout is."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    return Logger(service="chat", stream=stream, level="INFO"), raw


def _log_lines(raw: io.BytesIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw.getvalue().decode("utf-8").splitlines() if line]


def test_a_lone_surrogate_in_a_first_message_is_invalid_request_and_keeps_its_log_line(
    aws,
) -> None:
    ran("hostile: scripted")
    # GIVEN a cache tier (free), a first message holding a lone surrogate, and a strict log
    log, raw = _strict_utf8_log()
    gateway = HostileGateway(log=log)
    sub = new_sub()

    # WHEN it is published
    [turn] = turns_of(gateway.publish(sub, _turn("hello \ud800 there")))

    # THEN the client gets a typed, non-retryable invalid_request, and nothing is charged
    assert turn[-1]["type"] == "error"
    assert turn[-1]["code"] == "invalid_request"
    assert turn[-1]["retryable"] is False
    assert "not valid Unicode" in turn[-1]["message"]
    assert _charged(aws, sub) == {}  # (the refused event is counted against the rate)
    # AND the turn's log line was written
    finished = [line for line in _log_lines(raw) if line.get("message") == "turn finished"]
    assert [line["error_code"] for line in finished] == ["invalid_request"]


def test_a_lone_surrogate_in_a_later_message_is_invalid_request_and_charges_nothing(
    aws,
) -> None:
    ran("hostile: scripted")
    gateway = HostileGateway()
    sub = new_sub()
    payload = _turn()
    payload["messages"] += [
        {"role": "assistant", "content": [{"text": "Hi!"}]},
        {"role": "user", "content": [{"text": "\udc00 again"}]},
    ]
    [turn] = turns_of(gateway.publish(sub, payload))
    assert [e["type"] for e in turn] == ["error"]
    assert turn[-1]["code"] == "invalid_request"
    assert _charged(aws, sub) == {}  # (the refused event is counted against the rate)


def test_a_lone_surrogate_in_a_model_id_is_invalid_request(aws) -> None:
    ran("hostile: scripted")
    gateway = HostileGateway()
    [turn] = turns_of(gateway.publish(new_sub(), _turn(modelId="amazon.nova-micro-v1:0\udfff")))
    assert turn[-1]["code"] == "invalid_request"


@pytest.mark.parametrize("field", ["turnId", "conversationId"])
def test_an_id_with_a_trailing_newline_is_refused_and_not_echoed(aws, field) -> None:
    ran("hostile: scripted")
    gateway = HostileGateway()
    payload = _turn()
    payload[field] = "x-1\n"
    [turn] = turns_of(gateway.publish(new_sub(), payload))
    assert turn[-1]["code"] == "invalid_request"
    assert all(event[field] != "x-1\n" for event in turn)


def test_a_sub_with_a_trailing_newline_is_no_user(aws) -> None:
    ran("hostile: scripted")
    # GIVEN an identity whose sub ends in a newline, publishing to that very channel
    gateway = HostileGateway()
    sub = new_sub()
    gateway.invoke(
        {
            **_publish_event(cognito_identity(sub + "\n"), f"/chat/{sub}\n", [_turn()]),
        }
    )
    # THEN nothing is published anywhere: there is no user to answer
    assert gateway.api.events() == []


def _publish_event(identity: Any, path: str, payloads: list[Any]) -> dict[str, Any]:
    return appsync_event(
        "PUBLISH",
        path,
        identity,
        events=[{"id": f"e-{i}", "payload": p} for i, p in enumerate(payloads)],
        segments=["chat", path.rsplit("/", 1)[-1]],
    )


def test_a_model_id_with_a_trailing_newline_is_not_echoed_in_the_refusal(aws) -> None:
    ran("hostile: scripted")
    gateway = HostileGateway()
    [turn] = turns_of(gateway.publish(new_sub(), _turn(modelId="evil.model-v1\n")))
    assert turn[-1]["code"] == "model_not_allowed"
    assert "evil" not in turn[-1]["message"]


class _SurrogateModel:
    """A model (an OpenAI-compatible server, say) whose output holds a lone surrogate."""

    name = "openai"

    def stream(self, request: ModelRequest) -> Iterator[TextDelta | Completion]:
        from gateway.usage import TokenUsage

        yield TextDelta("broken \ud83d text")
        yield Completion("end_turn", TokenUsage(5, 3))


def test_model_output_with_a_lone_surrogate_still_reaches_the_client(aws) -> None:
    ran("hostile: scripted")
    gateway = HostileGateway(provider=_SurrogateModel())
    sub = new_sub()
    [turn] = turns_of(gateway.publish(sub, _turn()))
    assert [e["type"] for e in turn] == ["delta", "done"]
    assert turn[0]["text"] == "broken \ufffd text"
    assert gateway.api.channels() == {own_channel(sub)}


def test_an_event_whose_turn_raises_never_costs_the_next_event_its_turn(aws) -> None:
    ran("hostile: scripted")
    # GIVEN a runtime whose turn service raises on the first event of an invocation
    gateway = HostileGateway()
    real = gateway.runtime.events_door()
    handled: list[Any] = []

    class FirstRaises:
        def handle(self, inbound: Any) -> Any:
            handled.append(inbound)
            if len(handled) == 1:
                raise RuntimeError("a bug in one turn")
            return real.handle(inbound)

    gateway.runtime.events_door = lambda log=None: FirstRaises()  # type: ignore[method-assign]
    sub = new_sub()
    # WHEN one invocation carries two events
    events = gateway.publish(sub, _turn(turn_id="t-a"), _turn(turn_id="t-b"))
    # THEN the second still ran to its terminal
    assert len(handled) == 2
    assert [t[-1]["turnId"] for t in turns_of(events)] == ["t-b"]


def test_events_that_are_not_a_list_are_no_events(aws) -> None:
    ran("hostile: scripted")
    gateway = HostileGateway()
    sub = new_sub()
    event = _publish_event(cognito_identity(sub), f"/chat/{sub}", [])
    event["events"] = {"0": _turn()}
    gateway.invoke(event)  # neither raises nor answers anyone
    assert gateway.api.events() == []


def _charged(aws, sub: str) -> dict:
    """The token attributes of a user's usage item (settled buckets and months, reservations)."""
    item = aws.get_item(TableName="usage", Key={"pk": {"S": f"user#{sub}"}}).get("Item") or {}
    return {k: v for k, v in item.items() if k[:2] in ("d#", "m#", "c#", "r#")}
