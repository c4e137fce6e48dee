"""The prod web ACL, as declared, replayed against sample requests (``waf_evaluator``): the
gateway's own SigV4-signed publishes and legitimate chats pass; oversized bodies and one IP over
the rate are blocked."""

from __future__ import annotations

import copy
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from waf_evaluator import Request, WebAclEvaluator

from components.waf import chat_body_limit, greater_than_pattern

WEB_ACL = "aws:wafv2/webAcl:WebAcl"
USER_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl"  # a Cognito JWT
SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261127/us-east-1/appsync/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=0f1e2d"
)


def _publish(channel: str, event: dict, *, authorization: str, ip: str, at: float) -> Request:
    """An HTTP publish as AppSync Events takes it: events are JSON strings inside the body."""
    body = json.dumps({"channel": channel, "events": [json.dumps(event)]}).encode()
    headers = {
        "authorization": authorization,
        "content-type": "application/json",
        "content-length": str(len(body)),
    }
    return Request(ip=ip, at=at, headers=headers, body=body)


def _user_turn(text: str, *, ip: str = "198.51.100.7", at: float = 0.0) -> Request:
    event = {"conversationId": "c-1", "messages": [{"role": "user", "content": [{"text": text}]}]}
    return _publish("/chat/user-1", event, authorization=USER_TOKEN, ip=ip, at=at)


def _function_delta(text: str, *, seq: int = 0, at: float = 0.0) -> Request:
    event = {"type": "delta", "conversationId": "c-1", "turnId": "t-1", "seq": seq, "text": text}
    return _publish("/replies/user-1", event, authorization=SIGV4, ip="203.0.113.10", at=at)


@pytest.fixture(scope="module")
def web_acl(prod):
    return prod.one(WEB_ACL).inputs


@pytest.fixture
def waf(web_acl):
    return WebAclEvaluator(web_acl)


def test_a_12_kb_user_publish_passes(waf):
    request = _user_turn("x" * 12 * 1024)
    assert len(request.body) > 12 * 1024
    verdict = waf.evaluate(request)
    assert verdict.action == "ALLOW", verdict
    # The common rule set still sees it as oversized, but only counts it.
    assert verdict.rule is None


@pytest.mark.parametrize(
    "answer",
    [
        "Use <script>alert(1)</script> to see the alert.",
        "The file is ../../etc/passwd on most systems.",
        "Instance metadata lives at http://169.254.169.254/latest/meta-data/.",
    ],
)
def test_a_function_publish_of_any_answer_passes(waf, answer):
    assert waf.evaluate(_function_delta(answer)).action == "ALLOW"


def test_six_publishes_a_second_from_the_function_all_pass(waf):
    # Ten minutes of streaming at six publishes a second from one function IP: 3,600 requests,
    # more than the per-IP user limit in every 5-minute window.
    verdicts = [waf.evaluate(_function_delta("tok", seq=i, at=i / 6)) for i in range(3600)]
    assert {v.action for v in verdicts} == {"ALLOW"}


def test_a_300_kb_body_is_blocked(waf):
    verdict = waf.evaluate(_user_turn("x" * 300 * 1024))
    assert (verdict.action, verdict.rule) == ("BLOCK", "user-body-size")


def test_one_user_ip_over_the_rate_is_blocked_and_others_are_not(waf, web_acl):
    (rate_rule,) = [r for r in web_acl["rules"] if "rateBasedStatement" in r["statement"]]
    limit = int(rate_rule["statement"]["rateBasedStatement"]["limit"])
    window = rate_rule["statement"]["rateBasedStatement"]["evaluationWindowSec"]
    step = (window - 1) / (limit + 1)
    verdicts = [waf.evaluate(_user_turn("hi", at=i * step)) for i in range(limit + 1)]
    assert {v.action for v in verdicts[:limit]} == {"ALLOW"}
    assert (verdicts[-1].action, verdicts[-1].rule) == ("BLOCK", rate_rule["name"])
    # another user's IP is unaffected
    assert waf.evaluate(_user_turn("hi", ip="192.0.2.44", at=limit * step)).action == "ALLOW"


def test_a_user_publish_carrying_a_script_tag_is_still_blocked(waf):
    verdict = waf.evaluate(_user_turn("<script>document.location='https://evil.example'</script>"))
    assert verdict.action == "BLOCK"
    assert verdict.rule == "aws-managed-common-rules:CrossSiteScripting_BODY"


def test_without_the_scope_down_the_function_answer_would_be_blocked(web_acl):
    # The evaluator is not vacuous: the same rules without their scope-down statements block
    # the gateway's own publish, as the unscoped web ACL did.
    unscoped = copy.deepcopy(web_acl)
    for rule in unscoped["rules"]:
        for statement in rule["statement"].values():
            statement.pop("scopeDownStatement", None)
    verdict = WebAclEvaluator(unscoped).evaluate(_function_delta("<script>x</script>"))
    assert verdict.action == "BLOCK"


@pytest.mark.parametrize("char", ["a", "é", "中", "😀", "\u0001", '"'])
def test_the_largest_contract_turn_fits_the_body_limit(web_acl, char):
    # maxMessageChars is 16,000: the longest turn the contract allows, in the costliest
    # characters to encode, is never blocked for its size.
    request = _user_turn(char * 16_000)
    assert len(request.body) <= chat_body_limit(16_000)
    assert WebAclEvaluator(web_acl).evaluate(request).rule != "user-body-size"


@given(limit=st.integers(min_value=0, max_value=10**7), value=st.integers(0, 10**9))
def test_greater_than_pattern_matches_exactly_the_larger_numbers(limit, value):
    assert (re.fullmatch(greater_than_pattern(limit), str(value)) is not None) == (value > limit)
