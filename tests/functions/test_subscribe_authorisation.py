"""Subscribe authorisation: a user may subscribe to ``/<outbound>/<own sub>`` and nothing else."""

from __future__ import annotations

from typing import Any

import pytest
import subscribe
from aws_lambda_powertools.event_handler.events_appsync.exceptions import UnauthorizedException

from tests.functions.support import (
    IAM_IDENTITY,
    INBOUND,
    OTHER_SUB,
    OUTBOUND,
    SUB,
    appsync_event,
    cognito_identity,
)
from tests.support.appsync import lambda_context


@pytest.fixture(autouse=True)
def _namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INBOUND_NAMESPACE", INBOUND)
    monkeypatch.setenv("OUTBOUND_NAMESPACE", OUTBOUND)


def subscribe_to(path: str, identity: Any, segments: list[str] | None = None) -> Any:
    given = {} if segments is None else {"segments": segments}
    return subscribe.handler(appsync_event("SUBSCRIBE", path, identity, **given), None)


def test_a_user_may_subscribe_to_their_own_outbound_channel():
    # GIVEN a signed-in user WHEN they subscribe to /replies/<their sub> THEN it is allowed
    assert subscribe_to(f"/{OUTBOUND}/{SUB}", cognito_identity()) is None


def test_the_outbound_namespace_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("OUTBOUND_NAMESPACE", "answers")
    assert subscribe_to(f"/answers/{SUB}", cognito_identity()) is None
    with pytest.raises(UnauthorizedException):
        subscribe_to(f"/{OUTBOUND}/{SUB}", cognito_identity())


HOSTILE_PATHS = {
    "namespace wildcard": f"/{OUTBOUND}/*",
    "root wildcard": "/*",
    "own sub then wildcard": f"/{OUTBOUND}/{SUB}/*",
    "another user": f"/{OUTBOUND}/{OTHER_SUB}",
    "extra segment": f"/{OUTBOUND}/{SUB}/extra",
    "trailing slash": f"/{OUTBOUND}/{SUB}/",
    "empty segment": f"/{OUTBOUND}//{SUB}",
    "namespace only": f"/{OUTBOUND}",
    "inbound namespace": f"/{INBOUND}/{SUB}",
    "other namespace": f"/default/{SUB}",
    "case changed": f"/{OUTBOUND}/{SUB.upper()}",
    "padded": f"/{OUTBOUND}/{SUB} ",
    "no leading slash": f"{OUTBOUND}/{SUB}",
    "prefix of own sub": f"/{OUTBOUND}/{SUB[:-1]}",
    "own sub with suffix": f"/{OUTBOUND}/{SUB}0",
    "dot segments": f"/{OUTBOUND}/../{OUTBOUND}/{SUB}",
}


@pytest.mark.parametrize("path", HOSTILE_PATHS.values(), ids=HOSTILE_PATHS.keys())
def test_a_subscription_to_any_other_channel_is_refused(path):
    with pytest.raises(UnauthorizedException):
        subscribe_to(path, cognito_identity())


def test_segments_that_disagree_with_the_path_are_refused():
    with pytest.raises(UnauthorizedException):
        subscribe_to(f"/{OUTBOUND}/{SUB}", cognito_identity(), segments=[OUTBOUND, OTHER_SUB])


HOSTILE_IDENTITIES = {
    "API key (no identity)": None,
    "IAM principal": IAM_IDENTITY,
    "IAM principal claiming a sub": {**IAM_IDENTITY, "sub": SUB},
    "Lambda authorizer context": {"resolverContext": {"sub": SUB}},
    "empty sub": cognito_identity(""),
    "wildcard sub": cognito_identity("*"),
    "sub with a slash": cognito_identity(f"{SUB}/x"),
    "sub not a string": {**cognito_identity(), "sub": 42},
    "identity not an object": f"sub={SUB}",
    "a bare sub, no user-pool identity": {"sub": SUB},
    "claims about another user": {**cognito_identity(), "claims": {"sub": OTHER_SUB}},
    "claims not an object": {**cognito_identity(), "claims": "sub=" + SUB},
}


@pytest.mark.parametrize("identity", HOSTILE_IDENTITIES.values(), ids=HOSTILE_IDENTITIES.keys())
def test_a_caller_who_is_not_a_signed_in_user_is_refused(identity):
    with pytest.raises(UnauthorizedException):
        subscribe_to(f"/{OUTBOUND}/{SUB}", identity)


def test_an_identity_naming_its_user_without_claims_is_a_user():
    assert subscribe_to(f"/{OUTBOUND}/{SUB}", {"sub": SUB, "username": "alice"}) is None


def test_a_wildcard_sub_cannot_subscribe_to_a_wildcard_channel():
    with pytest.raises(UnauthorizedException):
        subscribe_to(f"/{OUTBOUND}/*", cognito_identity("*"))


@pytest.mark.parametrize("event", [{}, {"info": None}, {"identity": cognito_identity()}, []])
def test_a_malformed_event_is_refused(event):
    with pytest.raises(UnauthorizedException):
        subscribe.handler(event, lambda_context())
