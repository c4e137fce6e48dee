"""A regional WAF web ACL in front of the Event API that guards against users, not the gateway.

AWS WAF evaluates every HTTP request to an AppSync Event API before AppSync's own authorization
(https://docs.aws.amazon.com/appsync/latest/eventapi/using-waf-protect-apis.html) - including the
chat function's SigV4-signed ``POST /event`` publishes, about five a second per streaming turn.
So every rule here is scoped down to requests that are *not* SigV4-signed
(https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-scope-down-statements.html):

- a per-IP rate limit on user requests (rate-based rule; windows of 60, 120, 300 or 600 s, limit
  at least 10: https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based-high-level-settings.html);
- a body-size limit sized to the chat contract, read from ``Content-Length`` because WAF sees only
  the first 8 KB of an AppSync request body
  (https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-setting-body-inspection-limit.html);
- AWS's common rule set, with its ``SizeRestrictions_BODY`` rule (which blocks any body over
  8 KB: https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html)
  counted instead of blocking, since a legitimate 16,000-character prompt is larger than that.

A forged ``AWS4-HMAC-SHA256`` header skips these rules but not AppSync's IAM authorization, which
refuses the request; only a valid signature from a principal allowed ``appsync:EventPublish``
publishes anything.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

#: How a SigV4 ``Authorization`` header starts (Cognito users send a JWT instead).
#: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-signing-request.html
SIGV4_PREFIX = "AWS4-HMAC-SHA256 "
RATE_WINDOW_SECONDS = 300
#: Bytes a publish body may take per character of prompt text. The costliest is a character
#: outside the Basic Multilingual Plane sent as an escaped surrogate pair (``\\ud83d\\ude00``,
#: 12 bytes), with each backslash escaped once more because AppSync events travel as JSON
#: strings inside the JSON body: 14 bytes.
_BYTES_PER_CHAR = 14
_ENVELOPE_BYTES = 16 * 1024


def chat_body_limit(max_message_chars: int) -> int:
    """The largest publish body a chat turn within ``max_message_chars`` can need, in bytes."""
    return max_message_chars * _BYTES_PER_CHAR + _ENVELOPE_BYTES


def greater_than_pattern(limit: int) -> str:
    """A regular expression matching exactly the decimal integers greater than ``limit``."""
    digits = str(limit)
    choices = [rf"[1-9][0-9]{{{len(digits)},}}"]  # more digits than the limit
    for i, digit in enumerate(digits):
        if digit != "9":
            rest = len(digits) - i - 1
            higher = "9" if digit == "8" else f"[{int(digit) + 1}-9]"
            choices.append(f"{digits[:i]}{higher}" + (f"[0-9]{{{rest}}}" if rest else ""))
    return "^(?:" + "|".join(choices) + ")$"


def signed_by_iam() -> dict[str, object]:
    """Matches requests carrying a SigV4 ``Authorization`` header (the gateway's functions)."""
    return {
        "byte_match_statement": {
            "field_to_match": {"single_header": {"name": "authorization"}},
            "positional_constraint": "STARTS_WITH",
            "search_string": SIGV4_PREFIX,
            "text_transformations": [{"priority": 0, "type": "NONE"}],
        }
    }


def _from_users() -> dict[str, object]:
    return {"not_statement": {"statement": signed_by_iam()}}


def create_web_acl(
    name: str,
    *,
    protected_arn: pulumi.Input[str],
    rate_limit: int,
    max_body_bytes: int,
    parent: pulumi.Resource,
) -> aws.wafv2.WebAcl:
    """A web ACL for user traffic to the resource at ``protected_arn``: at most ``rate_limit``
    requests per IP per 5 minutes, bodies up to ``max_body_bytes``, and AWS's common rules."""
    metric = name.replace("-", "")
    web_acl = aws.wafv2.WebAcl(
        f"{name}-waf",
        scope="REGIONAL",
        description="User traffic: per-IP rate limit, chat-sized bodies, AWS common rules",
        default_action={"allow": {}},
        rules=[
            {
                "name": "user-rate-limit-per-ip",
                "priority": 0,
                "action": {"block": {}},
                "statement": {
                    "rate_based_statement": {
                        "limit": rate_limit,
                        "evaluation_window_sec": RATE_WINDOW_SECONDS,
                        "aggregate_key_type": "IP",
                        "scope_down_statement": _from_users(),
                    }
                },
                "visibility_config": _visibility(f"{metric}RateLimit"),
            },
            {
                "name": "user-body-size",
                "priority": 1,
                "action": {"block": {}},
                "statement": {
                    "and_statement": {
                        "statements": [
                            _from_users(),
                            {
                                "regex_match_statement": {
                                    "field_to_match": {"single_header": {"name": "content-length"}},
                                    "regex_string": greater_than_pattern(max_body_bytes),
                                    "text_transformations": [{"priority": 0, "type": "NONE"}],
                                }
                            },
                        ]
                    }
                },
                "visibility_config": _visibility(f"{metric}BodySize"),
            },
            {
                "name": "aws-managed-common-rules",
                "priority": 2,
                "override_action": {"none": {}},
                "statement": {
                    "managed_rule_group_statement": {
                        "vendor_name": "AWS",
                        "name": "AWSManagedRulesCommonRuleSet",
                        "scope_down_statement": _from_users(),
                        "rule_action_overrides": [
                            {"name": "SizeRestrictions_BODY", "action_to_use": {"count": {}}}
                        ],
                    }
                },
                "visibility_config": _visibility(f"{metric}CommonRules"),
            },
        ],
        visibility_config=_visibility(f"{metric}WebAcl"),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.wafv2.WebAclAssociation(
        f"{name}-waf-association",
        resource_arn=protected_arn,
        web_acl_arn=web_acl.arn,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return web_acl


def _visibility(metric_name: str) -> dict[str, object]:
    return {
        "cloudwatch_metrics_enabled": True,
        "metric_name": metric_name,
        "sampled_requests_enabled": True,
    }
