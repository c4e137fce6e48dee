"""Fuzzing the real subscribe handler: no generated channel path or identity gets another user's
channel, and every refusal is the typed ``UnauthorizedException`` AppSync turns into
``subscribe_error`` — never a crash of another kind."""

from __future__ import annotations

import string
from typing import Any

import pytest
import subscribe
from aws_lambda_powertools.event_handler.events_appsync.exceptions import UnauthorizedException
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.robustness.cases import ran
from tests.support.appsync import appsync_event

OUTBOUND = "replies"
INBOUND = "chat"
FUZZ = settings(
    max_examples=400,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=False,
)

subs = st.one_of(
    st.uuids().map(str),
    st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=60),
    st.sampled_from(["*", "", " ", "..", "a/b", "%2F", "null", "admin", "\u0000", "ünï"]),
)
groups = st.one_of(
    st.none(),
    st.lists(st.sampled_from(["free", "pro", "enterprise", "admin", "", "free,pro"]), max_size=4),
    st.text(max_size=20),
)


@st.composite
def identities(draw: st.DrawFn) -> Any:
    """User-pool identities, IAM identities, API-key (none) and malformed ones."""
    kind = draw(st.sampled_from(["cognito", "cognito", "cognito", "iam", "none", "junk", "mixed"]))
    sub = draw(subs)
    if kind == "cognito":
        identity: dict[str, Any] = {"sub": sub, "username": draw(st.text(max_size=12))}
        identity["groups"] = draw(groups)
        if draw(st.booleans()):
            identity["claims"] = {"sub": draw(subs), "cognito:groups": draw(groups)}
        return identity
    if kind == "iam":
        return {"accountId": "123456789012", "userArn": "arn:aws:iam::123456789012:user/x"}
    if kind == "mixed":
        return {"sub": sub, "accountId": "123456789012", "userArn": "arn:aws:sts::1:x"}
    if kind == "none":
        return None
    return draw(st.one_of(st.text(max_size=10), st.integers(), st.lists(st.text(), max_size=2)))


def _segments_of(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


@st.composite
def subscriptions(draw: st.DrawFn) -> tuple[Any, str, Any]:
    """(identity, channel path, segments) aimed at the caller's own channel and around it."""
    identity = draw(identities())
    own = identity.get("sub") if isinstance(identity, dict) else None
    own = own if isinstance(own, str) else "someone"
    other = draw(subs)
    path = draw(
        st.one_of(
            st.just(f"/{OUTBOUND}/{own}"),
            st.just(f"/{OUTBOUND}/{other}"),
            st.sampled_from(
                [
                    f"/{OUTBOUND}/*",
                    f"/{OUTBOUND}/{own}/*",
                    f"/{OUTBOUND}/{own}/extra",
                    f"/{OUTBOUND}//{own}",
                    f"/{OUTBOUND}/{own}/",
                    f"/{INBOUND}/{own}",
                    f"/{OUTBOUND.upper()}/{own}",
                    f"{OUTBOUND}/{own}",
                    f"/{OUTBOUND}/{own.upper()}",
                    f"/{OUTBOUND}/{own} ",
                    f"/{OUTBOUND}/{own}%00",
                    "/*",
                    "/",
                    "",
                ]
            ),
            st.text(max_size=80),
            st.lists(st.one_of(subs, st.just("*")), min_size=1, max_size=6).map(
                lambda parts: "/" + "/".join(parts)
            ),
        )
    )
    segments = draw(
        st.one_of(
            st.just(_segments_of(path)),
            st.none(),
            st.just([OUTBOUND, own]),
            st.lists(st.text(max_size=8), max_size=4),
        )
    )
    return identity, path, segments


def _event(identity: Any, path: str, segments: Any) -> dict[str, Any]:
    """An onSubscribe event in the shape AppSync Events sends."""
    return appsync_event("SUBSCRIBE", path, identity, segments=segments, namespace=OUTBOUND)


@pytest.fixture(autouse=True)
def _outbound_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_NAMESPACE", OUTBOUND)
    monkeypatch.setenv("INBOUND_NAMESPACE", INBOUND)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "ERROR")


VICTIM = "3f1c2a9e-1111-4a4a-9c9c-000000000001"


@FUZZ
@given(subscriptions())
# Paths Powertools' router cannot match (a newline inside) once bypassed the ownership check.
@example(({"sub": "a-user"}, "\n0", ["\n0"]))
@example((None, "\n0", None))
@example(({"sub": "a-user"}, f"/{OUTBOUND}/{VICTIM}\nx", [OUTBOUND, VICTIM]))
def test_a_subscription_is_allowed_only_to_the_callers_own_channel(case: tuple) -> None:
    identity, path, segments = case
    ran("fuzz: subscribe handler")
    # WHEN the real handler decides
    try:
        outcome = subscribe.handler(_event(identity, path, segments), None)
    except UnauthorizedException:
        return  # THEN a refusal is the typed exception AppSync answers with subscribe_error
    # THEN an allowed subscription is exactly /<outbound>/<caller's own sub>
    assert outcome is None
    assert isinstance(identity, dict)
    assert path == f"/{OUTBOUND}/{identity['sub']}"
    assert "accountId" not in identity and "userArn" not in identity


@settings(max_examples=100, deadline=2000)
@given(st.uuids().map(str), groups)
def test_a_user_pool_caller_may_subscribe_to_their_own_channel(sub: str, tier_groups) -> None:
    ran("fuzz: subscribe handler")
    path = f"/{OUTBOUND}/{sub}"
    identity = {"sub": sub, "username": "u", "groups": tier_groups}
    assert subscribe.handler(_event(identity, path, [OUTBOUND, sub]), None) is None
