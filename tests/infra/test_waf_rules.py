"""The prod web ACL, as declared, replayed against sample requests (``waf_evaluator``): the
gateway's own publishes (marked with the stack's origin secret) pass at full speed; users'
prompts holding code pass; oversized bodies, one IP over the rate and forged exemptions do not."""

from __future__ import annotations

import copy
import json
import re

import pytest
from gateway.environment import ORIGIN_HEADER, ORIGIN_SECRET_VARIABLE
from gateway.publisher import EventsHttpPublisher
from hypothesis import given
from hypothesis import strategies as st
from infra_support import function
from waf_evaluator import Request, WebAclEvaluator

from components.waf import COMMON_BODY_RULES, chat_body_limit, greater_than_pattern

WEB_ACL = "aws:wafv2/webAcl:WebAcl"
USER_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl"  # a Cognito JWT
SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261127/us-east-1/appsync/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-gateway-origin, "
    "Signature=0f1e2d"
)
FLOOD_IP = "198.51.100.66"
#: Prompts people paste into a chat - markup, script, SQL, shell and paths - with the common rule
#: set's body rule each trips in the evaluator's model (None: no modelled rule; the rule set has
#: no SQL rule - SQL injection is AWSManagedRulesSQLiRuleSet, which the web ACL does not use).
CODE_PROMPTS = {
    "Why does <script>alert(document.cookie)</script> run in my page?": "CrossSiteScripting_BODY",
    '<img src=x onerror="alert(1)"> - is this attribute dangerous?': "CrossSiteScripting_BODY",
    '<div class="card"><p>Hello</p></div> - centre this with flexbox': None,
    "SELECT * FROM users WHERE name = '' OR '1'='1'; DROP TABLE users; --": None,
    "Explain: rm -rf / --no-preserve-root; cat /etc/passwd | grep root": "GenericLFI_BODY",
    "My include fails: require('../../../config/secrets.js')": "GenericLFI_BODY",
    "Why does curl 169.254.169.254/latest/meta-data/ hang?": "EC2MetaDataSSRF_BODY",
    "Is fetching http://203.0.113.9/payload.txt from PHP's include() safe?": "GenericRFI_BODY",
}


def _publish(channel: str, event: dict, *, headers: dict, ip: str, at: float) -> Request:
    """An HTTP publish as AppSync Events takes it: events are JSON strings inside the body."""
    body = json.dumps({"channel": channel, "events": [json.dumps(event)]}).encode()
    headers = {
        **headers,
        "content-type": "application/json",
        "content-length": str(len(body)),
    }
    return Request(ip=ip, at=at, headers=headers, body=body)


def _user_turn(text: str, *, ip: str = "198.51.100.7", at: float = 0.0, **headers) -> Request:
    event = {"conversationId": "c-1", "messages": [{"role": "user", "content": [{"text": text}]}]}
    headers = {"authorization": USER_TOKEN, **headers}
    return _publish("/chat/user-1", event, headers=headers, ip=ip, at=at)


def _function_delta(secret: str, text: str, *, seq: int = 0, at: float = 0.0) -> Request:
    event = {"type": "delta", "conversationId": "c-1", "turnId": "t-1", "seq": seq, "text": text}
    headers = {"authorization": SIGV4, ORIGIN_HEADER: secret}
    return _publish("/replies/user-1", event, headers=headers, ip="203.0.113.10", at=at)


@pytest.fixture(scope="module")
def web_acl(prod):
    return prod.one(WEB_ACL).inputs


@pytest.fixture(scope="module")
def secret(prod):
    """The origin secret as the chat function receives it (what its publisher sends)."""
    return function(prod, "chat.handler").inputs["environment"]["variables"][ORIGIN_SECRET_VARIABLE]


@pytest.fixture
def waf(web_acl):
    return WebAclEvaluator(web_acl)


def _rate_rule(web_acl) -> tuple[str, int, int]:
    (rule,) = [r for r in web_acl["rules"] if "rateBasedStatement" in r["statement"]]
    statement = rule["statement"]["rateBasedStatement"]
    return rule["name"], int(statement["limit"]), int(statement["evaluationWindowSec"])


def _flood(waf, web_acl, **headers) -> list:
    """One IP sending one more request than the rate limit allows within one window."""
    _, limit, window = _rate_rule(web_acl)
    step = (window - 1) / (limit + 1)
    return [
        waf.evaluate(_user_turn("hi", ip=FLOOD_IP, at=i * step, **headers))
        for i in range(limit + 1)
    ]


def test_the_secret_is_random_long_and_the_same_in_the_function_and_the_web_acl(
    prod, web_acl, secret
):
    assert len(secret) >= 43  # 32 random bytes, URL-safe base64
    exemptions = re.findall(re.escape(secret), json.dumps(web_acl))
    assert len(exemptions) == 3  # the rate, size and common rules each skip exactly it
    assert not re.search(r"AWS4-HMAC-SHA256", json.dumps(web_acl))
    (parameter,) = [
        p for p in prod.of_type("aws:ssm/parameter:Parameter") if "origin-secret" in p.name
    ]
    assert parameter.inputs["type"] == "SecureString"
    assert parameter.inputs["value"] == secret


def test_a_stack_without_a_waf_sends_no_secret(dev):
    assert (
        ORIGIN_SECRET_VARIABLE
        not in function(dev, "chat.handler").inputs["environment"]["variables"]
    )


def test_the_publisher_sends_the_secret_from_its_environment(monkeypatch):
    publisher = EventsHttpPublisher(
        "http://127.0.0.1:9/event", region="us-east-1", credentials=lambda: None
    )
    assert ORIGIN_HEADER not in publisher._headers(b"{}")
    monkeypatch.setenv(ORIGIN_SECRET_VARIABLE, "s3cret")
    assert publisher._headers(b"{}")[ORIGIN_HEADER] == "s3cret"


def test_a_12_kb_user_publish_passes(waf):
    request = _user_turn("x" * 12 * 1024)
    assert len(request.body) > 12 * 1024
    verdict = waf.evaluate(request)
    assert verdict.action == "ALLOW", verdict
    # The common rule set still sees it as oversized, but only counts it.
    assert verdict.counted == ("aws-managed-common-rules:SizeRestrictions_BODY",)


@pytest.mark.parametrize(("prompt", "rule"), CODE_PROMPTS.items())
def test_a_user_prompt_holding_code_passes(waf, prompt, rule):
    verdict = waf.evaluate(_user_turn(prompt))
    assert verdict.action == "ALLOW", verdict
    # The body rule saw it and only counted it.
    if rule:
        assert f"aws-managed-common-rules:{rule}" in verdict.counted


def test_every_body_rule_of_the_common_rule_set_only_counts(web_acl):
    (group,) = [r for r in web_acl["rules"] if "managedRuleGroupStatement" in r["statement"]]
    overrides = group["statement"]["managedRuleGroupStatement"]["ruleActionOverrides"]
    counted = {o["name"] for o in overrides if "count" in o["actionToUse"]}
    assert counted == set(COMMON_BODY_RULES)


def test_without_the_overrides_code_prompts_would_be_blocked(web_acl):
    strict = copy.deepcopy(web_acl)
    for rule in strict["rules"]:
        rule["statement"].get("managedRuleGroupStatement", {}).pop("ruleActionOverrides", None)
    for prompt, rule in CODE_PROMPTS.items():
        verdict = WebAclEvaluator(strict).evaluate(_user_turn(prompt))
        if rule:
            assert (verdict.action, verdict.rule) == ("BLOCK", f"aws-managed-common-rules:{rule}")


@pytest.mark.parametrize(
    "answer",
    [
        "Use <script>alert(1)</script> to see the alert.",
        "The file is ../../etc/passwd on most systems.",
        "Instance metadata lives at http://169.254.169.254/latest/meta-data/.",
    ],
)
def test_a_function_publish_of_any_answer_passes(waf, secret, answer):
    assert waf.evaluate(_function_delta(secret, answer)).action == "ALLOW"


#: Publishes a second from one egress address: ten turns streaming at once, each flushing twice a
#: second (streamFlushMs 500) - Lambda functions outside a VPC share addresses.
FULL_SPEED = 20


def _function_stream(evaluator, secret: str, seconds: int = 600) -> list:
    return [
        evaluator.evaluate(_function_delta(secret, "tok", seq=i, at=i / FULL_SPEED))
        for i in range(seconds * FULL_SPEED)
    ]


def test_the_functions_publishes_at_full_speed_all_pass(waf, web_acl, secret):
    # Ten minutes at full speed: 12,000 requests, far more than one user IP may send.
    _, limit, window = _rate_rule(web_acl)
    assert FULL_SPEED * window > limit
    assert {v.action for v in _function_stream(waf, secret)} == {"ALLOW"}


def test_a_300_kb_body_is_blocked(waf):
    verdict = waf.evaluate(_user_turn("x" * 300 * 1024))
    assert (verdict.action, verdict.rule) == ("BLOCK", "user-body-size")


def test_a_forged_sigv4_authorization_header_gets_no_exemption(waf):
    verdict = waf.evaluate(_user_turn("x" * 300 * 1024, authorization=SIGV4))
    assert (verdict.action, verdict.rule) == ("BLOCK", "user-body-size")


@pytest.mark.parametrize(
    "forged",
    [
        {"authorization": SIGV4},
        {ORIGIN_HEADER: "guess"},
        {ORIGIN_HEADER: ""},
    ],
    ids=["sigv4-authorization", "guessed-origin", "empty-origin"],
)
def test_a_flood_from_one_ip_with_a_forged_header_is_rate_limited(waf, web_acl, forged):
    rule, limit, _ = _rate_rule(web_acl)
    verdicts = _flood(waf, web_acl, **forged)
    assert {v.action for v in verdicts[:limit]} == {"ALLOW"}
    assert (verdicts[-1].action, verdicts[-1].rule) == ("BLOCK", rule)


def test_only_the_exact_secret_exempts(waf, web_acl, secret):
    rule, _, _ = _rate_rule(web_acl)
    for near in (secret.upper(), f"{secret} ", f"{secret}x", secret[:-1]):
        assert near != secret
        verdict = _flood(WebAclEvaluator(web_acl), web_acl, **{ORIGIN_HEADER: near})[-1]
        assert (verdict.action, verdict.rule) == ("BLOCK", rule), near


def test_one_user_ip_over_the_rate_is_blocked_and_others_are_not(waf, web_acl):
    rule, limit, window = _rate_rule(web_acl)
    verdicts = _flood(waf, web_acl)
    assert (verdicts[-1].action, verdicts[-1].rule) == ("BLOCK", rule)
    # another user's IP is unaffected
    assert waf.evaluate(_user_turn("hi", ip="192.0.2.44", at=window - 1)).action == "ALLOW"


def test_without_the_scope_down_the_functions_stream_would_be_rate_limited(web_acl, secret):
    # The evaluator is not vacuous: the same rules without their scope-down statements block
    # the gateway's own publishes once they pass the per-IP limit.
    unscoped = copy.deepcopy(web_acl)
    for rule in unscoped["rules"]:
        for statement in rule["statement"].values():
            statement.pop("scopeDownStatement", None)
    assert "BLOCK" in {v.action for v in _function_stream(WebAclEvaluator(unscoped), secret)}


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
