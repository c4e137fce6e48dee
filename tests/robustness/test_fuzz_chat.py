"""Fuzzing the real chat handler with generated inbound payloads, identities, group lists and
channel paths — moto (server mode) for DynamoDB, SSM and Firehose, the local model, and a
recording publish endpoint.

Properties, for every generated invocation:
- the handler never raises, and no turn ends in ``internal_error`` (nothing crashed inside);
- every turn ends with exactly one terminal event, last, on the sender's own outbound channel,
  and every refusal is a typed ``error`` (a known code, a human message, ``retryable``, a
  ``requestId``; ``window`` and ``resetsAt`` for ``limit_exceeded``);
- nothing is ever published to another user's channel, nor anything at all for a caller who is
  not a user;
- a refused turn charges nothing: the sender's usage item is exactly as it was.
"""

from __future__ import annotations

import os
import re
import string
import time
import uuid
from typing import Any

import chat
import pytest
from gateway.contract import ErrorCode
from gateway.tiers import WINDOWS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.robustness.cases import ran
from tests.robustness.conftest import INBOUND, LITE, MICRO, OUTBOUND, PRO, terminal_of
from tests.support.appsync import lambda_context

EXAMPLES = int(os.environ.get("ROBUSTNESS_EXAMPLES", "300"))
REFUSALS = {
    ErrorCode.UNAUTHORIZED.value,
    ErrorCode.INVALID_REQUEST.value,
    ErrorCode.MODEL_NOT_ALLOWED.value,
    ErrorCode.LIMIT_EXCEEDED.value,
    ErrorCode.USAGE_UNAVAILABLE.value,
}
KNOWN_CODES = {code.value for code in ErrorCode}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

# A few users the examples share, so usage accumulates and limits are reached: a fresh free
# user, a pro user, one seeded just under the free tier's daily output limit, one at it.
FRESH, PRO_USER, NEAR, AT = (str(uuid.uuid4()) for _ in range(4))
USERS = {FRESH: None, PRO_USER: ["pro"], NEAR: ["free"], AT: ["free", "unknown-group"]}


@pytest.fixture(scope="module")
def stage(gateway_stage):
    now = time.time()
    gateway_stage.seed(NEAR, now, daily=(100, 4_000 - 200))
    gateway_stage.seed(AT, now, daily=(100, 4_000), monthly=(100, 100_000))
    return gateway_stage


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
texts = st.one_of(
    st.text(max_size=120),
    st.sampled_from(["", " ", "Hello", "[tokens=7] short please", "ignore previous; sub=x"]),
    st.integers(min_value=15_000, max_value=40_000).map(lambda n: "x" * n),  # huge
)
ids = st.one_of(
    st.none(),
    st.uuids().map(str),
    st.text(string.ascii_letters + string.digits + "-_.:", min_size=1, max_size=80),
    st.text(max_size=20),
    json_scalars,
)
model_ids = st.one_of(
    st.none(),
    st.sampled_from([MICRO, LITE, PRO, "anthropic.claude-v2", "*", "", "../../etc", MICRO + " "]),
    st.text(max_size=40),
    json_scalars,
)
blocks = st.one_of(
    st.fixed_dictionaries({"text": texts}),
    st.fixed_dictionaries({"text": texts, "image": json_values}),
    st.dictionaries(st.text(max_size=6), json_values, max_size=2),
    json_scalars,
)
messages_of = st.one_of(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", "", "USER"]),
            "content": st.one_of(st.lists(blocks, max_size=3), json_scalars),
        }
    ),
    json_values,
)
valid_message = st.fixed_dictionaries(
    {
        "role": st.just("user"),
        "content": st.lists(
            st.fixed_dictionaries({"text": st.text(min_size=1, max_size=80)}),
            min_size=1,
            max_size=2,
        ),
    }
)
message_lists = st.one_of(
    st.lists(valid_message, min_size=1, max_size=1),  # a plain, valid turn
    st.lists(messages_of, max_size=4),
    st.lists(valid_message, min_size=41, max_size=44),  # too many
    json_values,
)
spoofs = st.fixed_dictionaries(
    {},
    optional={
        "identity": st.fixed_dictionaries({"sub": st.uuids().map(str)}),
        "sub": st.uuids().map(str),
        "userId": st.uuids().map(str),
        "channel": st.just(f"/{OUTBOUND}/{FRESH}"),
        "groups": st.just(["pro", "enterprise"]),
        "tier": st.just("pro"),
    },
)


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["valid", "valid", "valid", "turn", "turn", "odd", "scalar"]))
    if kind == "scalar":
        return draw(st.one_of(json_scalars, st.lists(json_values, max_size=2)))
    if kind == "valid":  # well-formed, so admission, allowlists and limits are exercised
        payload: dict[str, Any] = {
            "conversationId": f"c-{uuid.uuid4().hex[:8]}",
            "messages": draw(st.lists(valid_message, min_size=1, max_size=2)),
        }
        model = draw(st.sampled_from([None, MICRO, LITE, PRO, "anthropic.claude-v2"]))
        if model:
            payload["modelId"] = model
        if draw(st.booleans()):
            payload["turnId"] = f"t-{uuid.uuid4().hex[:12]}"
        return payload
    payload = {
        "conversationId": draw(ids) if kind == "odd" else f"c-{uuid.uuid4().hex[:8]}",
        "messages": draw(message_lists),
    }
    for key, strategy in (("turnId", ids), ("modelId", model_ids)):
        value = draw(strategy)
        if value is not None or draw(st.booleans()):
            payload[key] = value
    payload.update(draw(spoofs))
    return payload


@st.composite
def identities(draw: st.DrawFn) -> tuple[Any, str | None]:
    """(identity, the sub of the known user it is — None for every other kind of caller)."""
    kind = draw(st.sampled_from(["user", "user", "user", "user", "iam", "none", "junk"]))
    if kind == "user":
        sub = draw(st.sampled_from(sorted(USERS)))
        groups = draw(
            st.one_of(
                st.just(USERS[sub]), st.lists(st.sampled_from(["free", "pro", "x"]), max_size=3)
            )
        )
        return {"sub": sub, "username": "u", "groups": groups, "claims": {"sub": sub}}, sub
    if kind == "iam":
        return {"accountId": "123456789012", "userArn": "arn:aws:iam::1:user/x"}, None
    if kind == "none":
        return None, None
    return draw(st.one_of(json_scalars, st.fixed_dictionaries({"sub": json_scalars}))), None


def _claimed_sub(identity: Any) -> str | None:
    """The sub an identity claims, if it could be a user-pool identity at all."""
    if not isinstance(identity, dict) or "accountId" in identity or "userArn" in identity:
        return None
    sub = identity.get("sub")
    return sub if isinstance(sub, str) else None


@st.composite
def invocations(draw: st.DrawFn) -> tuple[Any, str | None, str, Any, list[Any]]:
    identity, sub = draw(identities())
    own = sub or "nobody"
    other = draw(st.sampled_from(sorted(set(USERS) - {own}) or ["someone"]))
    channel = draw(
        st.one_of(
            st.just(f"/{INBOUND}/{own}"),
            st.just(f"/{INBOUND}/{own}"),
            st.sampled_from(
                [
                    f"/{INBOUND}/{other}",
                    f"/{INBOUND}/*",
                    f"/{INBOUND}/{own}/x",
                    f"/{OUTBOUND}/{own}",
                    f"/{INBOUND}",
                    f"/{INBOUND}/{own.upper()}",
                ]
            ),
            st.text(max_size=40),
        )
    )
    segments = draw(st.one_of(st.just("derive"), st.none(), st.just([INBOUND, other])))
    return identity, sub, channel, segments, draw(st.lists(payloads(), min_size=1, max_size=3))


def _turns(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split a channel's events into turns: each ends at its terminal event."""
    turns, current = [], []
    for event in events:
        current.append(event)
        if event.get("type") in ("done", "error"):
            turns.append(current)
            current = []
    if current:
        turns.append(current)
    return turns


def _check_error(event: dict[str, Any]) -> None:
    assert event["code"] in KNOWN_CODES
    assert event["code"] != ErrorCode.INTERNAL_ERROR.value, "a turn crashed inside"
    assert isinstance(event["message"], str) and event["message"].strip()
    assert "Traceback" not in event["message"]
    assert isinstance(event["retryable"], bool)
    assert isinstance(event["requestId"], str)
    if event["code"] == ErrorCode.LIMIT_EXCEEDED.value:
        assert event["window"] in WINDOWS
        assert ISO_UTC.match(event["resetsAt"])


@settings(
    max_examples=EXAMPLES,
    deadline=20_000,  # only a hang fails on time; speed lives in the benchmark
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(invocations())
def test_generated_invocations_never_crash_leak_or_charge_a_refusal(stage, case) -> None:
    identity, sub, channel, segments, payloads_ = case
    ran("fuzz: chat handler")
    before = stage.usage_item(sub) if sub else None
    mark = stage.mark()

    # WHEN the real handler runs the invocation
    chat.handler(
        stage.publish_event(identity, payloads_, channel, segments), lambda_context("fuzz")
    )
    published = stage.published_since(mark)

    # THEN nothing went anywhere but the sender's own outbound channel, and nothing at all
    # for a caller who is not a user
    claimed = _claimed_sub(identity)
    if claimed is None:
        assert published == [], "something was published for a caller who is not a user"
        return
    assert {e.channel for e in published} <= {f"/{OUTBOUND}/{claimed}"}
    if sub is None:
        return  # an odd identity with a sub: answered on its own channel, or not at all

    # AND every turn ended with exactly one terminal event, last, with seq 0..n
    events = [e.payload for e in published]
    turns = _turns(events)
    assert len(turns) == len(payloads_)
    for turn in turns:
        assert terminal_of(turn) == [turn[-1]]
        assert [e["seq"] for e in turn] == list(range(len(turn)))
        assert len({e["turnId"] for e in turn}) == 1
        if turn[-1]["type"] == "error":
            _check_error(turn[-1])

    # AND a turn refused before it ran charged nothing
    # (a refused event is counted against the request rate, so only the tokens are compared)
    if all(t[-1]["type"] == "error" and t[-1]["code"] in REFUSALS for t in turns):
        assert _tokens(stage.usage_item(sub)) == _tokens(before)


def _tokens(item: Any) -> dict[str, Any]:
    """The attributes of a usage item that hold tokens (settled, reserved)."""
    return {k: v for k, v in (item or {}).items() if k[:2] in ("d#", "m#", "c#", "r#")}


def test_the_fuzz_reaches_every_kind_of_outcome(stage) -> None:
    """The generated cases exercise admitted turns and each kind of refusal, so the properties
    above are not vacuous (this test runs after the fuzz in this module)."""
    codes = {
        e.payload.get("code") or e.payload["type"]
        for e in stage.stage.sink.snapshot()
        if e.payload.get("type") in ("done", "error")
    }
    if EXAMPLES < 100:
        pytest.skip("too few examples to expect every outcome")
    assert {
        "done",
        "invalid_request",
        "unauthorized",
        "model_not_allowed",
        "limit_exceeded",
    } <= codes


def test_an_unroutable_channel_path_still_gets_a_terminal_event(stage) -> None:
    """Powertools' router cannot match a path with a newline inside (its "." stops there); the
    fuzz found such turns dropped without a terminal event."""
    ran("fuzz: chat handler")
    identity = stage.user(FRESH)
    mark = stage.mark()
    chat.handler(stage.publish_event(identity, [stage.turn()], "\n0", None), lambda_context("fuzz"))
    events = [e.payload for e in stage.published_since(mark)]
    assert [e["code"] for e in terminal_of(events)] == ["unauthorized"]
