"""Hypothesis strategies for hostile inbound events: arbitrary JSON, deep nesting, every Unicode
category (lone surrogates and control characters included), ids at and beyond their limits, and
stop requests well- and ill-formed."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Any

from gateway.contract import MAX_TURN_ID_CHARS
from gateway.wire import MAX_CONVERSATION_ID_CHARS
from hypothesis import strategies as st

#: Every code point Hypothesis can draw, surrogates (category Cs) and controls (Cc) included.
any_character = st.characters(exclude_categories=())
hostile_text = st.text(any_character, max_size=40)
#: Text with no lone surrogate, so a turn carrying it is valid.
valid_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60).filter(
    lambda t: t.strip()
)
ID_CHARACTERS = string.ascii_letters + string.digits + "._:-"

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=10,
)


def _nested_text(depth: int, opener: str) -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    core = "1" if opener.startswith("{") else ""
    return opener * depth + core + closer * depth


def _nested_object(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


#: Nesting at and far beyond the interpreter's recursion limit, as text and as objects.
deep_payloads = st.one_of(
    st.builds(_nested_text, st.integers(1, 12_000), st.sampled_from(["[", '{"a":'])),
    st.builds(
        lambda depth, where: {
            "conversationId": "c-1",
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            where: _nested_object(depth),
        },
        st.integers(1, 2_000),
        st.sampled_from(["extra", "modelId", "turnId"]),
    ),
    st.builds(
        lambda depth: {"conversationId": "c-1", "messages": _nested_object(depth)},
        st.integers(1, 2_000),
    ),
)


def _id_of_length(length: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(ID_CHARACTERS), min_size=length, max_size=length).map(
        lambda s: "a" + s[1:] if s else s
    )


def ids(limit: int) -> st.SearchStrategy[Any]:
    """Ids at their limit, one past it, with a trailing newline, odd characters, wrong types."""
    return st.one_of(
        st.sampled_from([1, limit - 1, limit, limit + 1, limit * 4]).flatmap(_id_of_length),
        _id_of_length(8).map(lambda s: s + "\n"),
        _id_of_length(8).map(lambda s: "\n" + s),
        _id_of_length(8).map(lambda s: s + "\ud800"),
        st.sampled_from(["", " ", "-lead", "t 1", "t/1", "t#1", "١٢٣", "t\x00", "t\u2028"]),
        hostile_text,
        json_scalars,
    )


turn_ids = ids(MAX_TURN_ID_CHARS)
conversation_ids = ids(MAX_CONVERSATION_ID_CHARS)


@dataclass(frozen=True)
class Inbound:
    """One generated inbound payload, and whether it is a valid stop (which has no answer)."""

    payload: Any
    valid_stop: bool = False


def _message(role: str, text: Any) -> dict[str, Any]:
    return {"role": role, "content": [{"text": text}]}


@st.composite
def chat_turns(draw: st.DrawFn) -> Inbound:
    """Chat turns with every field drawn from valid or hostile values."""
    payload: dict[str, Any] = {
        "conversationId": draw(st.one_of(st.just("c-1"), conversation_ids)),
        "messages": draw(
            st.one_of(
                st.lists(st.builds(_message, st.just("user"), valid_text), min_size=1, max_size=1),
                st.lists(
                    st.builds(_message, st.sampled_from(["user", "assistant"]), hostile_text),
                    min_size=1,
                    max_size=3,
                ),
                st.lists(json_values, max_size=3),
                json_values,
            )
        ),
    }
    if draw(st.booleans()):
        payload["turnId"] = draw(st.one_of(_id_of_length(12), turn_ids))
    if draw(st.booleans()):
        payload["modelId"] = draw(
            st.one_of(st.sampled_from(["amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0"]), ids(256))
        )
    payload.update(draw(st.dictionaries(hostile_text, json_values, max_size=2)))
    return Inbound(payload)


@st.composite
def stop_requests(draw: st.DrawFn) -> Inbound:
    """Stops: valid ones (no answer), and ones that are malformed by construction."""
    turn_id = draw(_id_of_length(12))
    kind = draw(st.sampled_from(["valid", "valid+conversation", "bad id", "bad action", "no id"]))
    if kind == "valid":
        return Inbound({"action": "stop", "turnId": turn_id}, valid_stop=True)
    if kind == "valid+conversation":
        return Inbound(
            {"action": "stop", "turnId": turn_id, "conversationId": "c-1"}, valid_stop=True
        )
    if kind == "bad id":
        bad = draw(
            st.sampled_from(["", "x" * (MAX_TURN_ID_CHARS + 1), "t-1\n", "t\ud800", 7, None])
        )
        return Inbound({"action": "stop", "turnId": bad})
    if kind == "bad action":
        action = draw(st.one_of(st.sampled_from(["STOP", "stop ", "", "cancel"]), json_scalars))
        return Inbound({"action": action, "turnId": turn_id})
    return Inbound({"action": "stop"})


def as_json_text(inbound: Inbound) -> Inbound:
    """The same payload published as a JSON string (``\\ud800`` escapes decode to surrogates)."""
    try:
        return Inbound(json.dumps(inbound.payload), inbound.valid_stop)
    except (ValueError, RecursionError):
        return inbound


inbound_events = st.one_of(
    chat_turns(),
    chat_turns().map(as_json_text),
    stop_requests(),
    deep_payloads.map(Inbound),
    json_values.map(Inbound),
    st.one_of(hostile_text, st.binary(max_size=40)).map(Inbound),
)
