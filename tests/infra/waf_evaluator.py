"""A small AWS WAF rule evaluator for the statement types the gateway's web ACL uses, so a test can
replay sample requests through the rules exactly as declared (camelCase inputs of the declared
``aws:wafv2/webAcl:WebAcl``).

Semantics follow the AWS WAF Developer Guide:

- rules run in ``priority`` order; the first Block or Allow ends evaluation, Count continues, and
  the web ACL's default action applies when no rule terminates
  (https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-processing-order.html);
- ``byteMatchStatement``/``regexMatchStatement`` on a single header, ``andStatement``,
  ``notStatement`` (https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statements-list.html);
- ``rateBasedStatement``: per aggregation key, requests matching the scope-down statement within
  the trailing ``evaluationWindowSec`` are counted, and those over ``limit`` get the rule's action
  (https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based-high-level-settings.html);
- AppSync forwards only the first 8,192 body bytes to WAF
  (https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-setting-body-inspection-limit.html).

``AWSManagedRulesCommonRuleSet`` is AWS's code, not ours: it is modelled here by its five body
rules, whose documented behaviour matters to a chat gateway
(https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html):
``SizeRestrictions_BODY`` (body over 8 KB), ``CrossSiteScripting_BODY`` (script tags and event
handler attributes), ``GenericLFI_BODY`` (``../`` traversal and system paths),
``GenericRFI_BODY`` (a URL naming an IPv4 address) and ``EC2MetaDataSSRF_BODY`` (the
instance-metadata address), each honouring the group's ``ruleActionOverrides`` and scope-down
statement. The real patterns are broader and unpublished; the models only need to fire on the
sample bodies, so a test can show that a counted rule saw them and did not block.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

BODY_INSPECTION_LIMIT = 8 * 1024

_COMMON_RULE_SET: dict[str, Callable[[bytes, int], bool]] = {
    "SizeRestrictions_BODY": lambda body, size: size > 8 * 1024,
    "CrossSiteScripting_BODY": lambda body, size: (
        re.search(rb"<\s*script|\bon(?:error|load|click)\s*=", body, re.I) is not None
    ),
    "GenericLFI_BODY": lambda body, size: re.search(rb"\.\./|/etc/passwd", body) is not None,
    "GenericRFI_BODY": lambda body, size: (
        re.search(rb"https?://\d{1,3}(?:\.\d{1,3}){3}", body) is not None
    ),
    "EC2MetaDataSSRF_BODY": lambda body, size: b"169.254.169.254" in body,
}


@dataclass(frozen=True)
class Request:
    """One HTTP request to the Event API."""

    ip: str
    at: float  # seconds
    headers: Mapping[str, str]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get(name.lower())


@dataclass(frozen=True)
class Verdict:
    action: str  # "ALLOW" | "BLOCK"
    rule: str | None  # the terminating rule, None for the default action
    counted: tuple[str, ...] = ()


@dataclass
class WebAclEvaluator:
    """Evaluates requests, in time order, against one declared web ACL's inputs."""

    web_acl: Mapping[str, Any]
    _seen: dict[tuple[str, str], deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def evaluate(self, request: Request) -> Verdict:
        counted: list[str] = []
        self._counted = counted  # managed rules counted inside a group land here too
        for rule in sorted(self.web_acl["rules"], key=lambda r: r["priority"]):
            outcome = self._rule(rule, request)
            if outcome is None:
                continue
            action, name = outcome
            if action == "COUNT":
                counted.append(name)
                continue
            return Verdict(action, name, tuple(counted))
        default = "ALLOW" if "allow" in self.web_acl["defaultAction"] else "BLOCK"
        return Verdict(default, None, tuple(counted))

    def _rule(self, rule: Mapping[str, Any], request: Request) -> tuple[str, str] | None:
        statement = rule["statement"]
        if "managedRuleGroupStatement" in statement:
            return self._managed_group(rule, statement["managedRuleGroupStatement"], request)
        if "rateBasedStatement" in statement:
            matched = self._rate(rule["name"], statement["rateBasedStatement"], request)
        else:
            matched = self._matches(statement, request)
        return (_action(rule["action"]), rule["name"]) if matched else None

    def _managed_group(self, rule, group, request: Request) -> tuple[str, str] | None:
        assert (group["vendorName"], group["name"]) == ("AWS", "AWSManagedRulesCommonRuleSet"), (
            f"no model of managed rule group {group['name']}"
        )
        scope = group.get("scopeDownStatement")
        if scope is not None and not self._matches(scope, request):
            return None
        overrides = {
            o["name"]: _action(o["actionToUse"]) for o in group.get("ruleActionOverrides") or []
        }
        inspected = request.body[:BODY_INSPECTION_LIMIT]
        for name, matches in _COMMON_RULE_SET.items():
            if not matches(inspected, len(request.body)):
                continue
            action = overrides.get(name, "BLOCK")
            if "count" in rule.get("overrideAction", {}):
                action = "COUNT"
            if action != "COUNT":
                return action, f"{rule['name']}:{name}"
            self._counted.append(f"{rule['name']}:{name}")
        return None

    def _rate(self, rule_name: str, statement: Mapping[str, Any], request: Request) -> bool:
        scope = statement.get("scopeDownStatement")
        if scope is not None and not self._matches(scope, request):
            return False
        assert statement.get("aggregateKeyType", "IP") == "IP"
        window = statement.get("evaluationWindowSec", 300)
        seen = self._seen[(rule_name, request.ip)]
        while seen and seen[0] <= request.at - window:
            seen.popleft()
        seen.append(request.at)
        return len(seen) > statement["limit"]

    def _matches(self, statement: Mapping[str, Any], request: Request) -> bool:
        if "andStatement" in statement:
            return all(self._matches(s, request) for s in statement["andStatement"]["statements"])
        if "orStatement" in statement:
            return any(self._matches(s, request) for s in statement["orStatement"]["statements"])
        if "notStatement" in statement:
            return not self._matches(statement["notStatement"]["statement"], request)
        if "byteMatchStatement" in statement:
            return _byte_match(statement["byteMatchStatement"], request)
        if "regexMatchStatement" in statement:
            match = statement["regexMatchStatement"]
            value = _field(match["fieldToMatch"], request)
            return value is not None and re.search(match["regexString"], value) is not None
        raise AssertionError(f"no model of statement {sorted(statement)}")


def _action(action: Mapping[str, Any]) -> str:
    (name,) = action
    return name.upper()


def _field(field_to_match: Mapping[str, Any], request: Request) -> str | None:
    if "singleHeader" in field_to_match:
        return request.header(field_to_match["singleHeader"]["name"])
    raise AssertionError(f"no model of field {sorted(field_to_match)}")


def _byte_match(statement: Mapping[str, Any], request: Request) -> bool:
    assert all(t["type"] == "NONE" for t in statement["textTransformations"])
    value = _field(statement["fieldToMatch"], request)
    if value is None:
        return False
    needle = statement["searchString"]
    constraint = statement["positionalConstraint"]
    if constraint == "STARTS_WITH":
        return value.startswith(needle)
    if constraint == "CONTAINS":
        return needle in value
    if constraint == "EXACTLY":
        return value == needle
    raise AssertionError(f"no model of positional constraint {constraint}")
