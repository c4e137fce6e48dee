"""A regional WAF web ACL in front of the Event API that guards against users, not the gateway.

AWS WAF evaluates every HTTP request to an AppSync Event API before AppSync's own authorization
(https://docs.aws.amazon.com/appsync/latest/eventapi/using-waf-protect-apis.html) - including the
chat function's ``POST /event`` publishes, about two a second per streaming turn. So every rule
here is scoped down to requests that do not come from the gateway's functions
(https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-scope-down-statements.html):

- a per-IP rate limit on user requests (rate-based rule; windows of 60, 120, 300 or 600 s, limit
  at least 10: https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based-high-level-settings.html);
- a body-size limit sized to the chat contract, read from ``Content-Length`` because WAF sees only
  the first 8 KB of an AppSync request body
  (https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-setting-body-inspection-limit.html);
- AWS's common rule set, with its five body rules - ``SizeRestrictions_BODY`` (any body over
  8 KB), ``CrossSiteScripting_BODY``, ``GenericLFI_BODY``, ``GenericRFI_BODY`` and
  ``EC2MetaDataSSRF_BODY`` (https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html)
  - counted instead of blocking: a chat prompt is free text, and people paste HTML, ``<script>``,
  SQL, shell commands and file paths into it. The size rule above still blocks what is too big,
  and the rule set's URI, query, cookie and header rules still block.

**How the functions are told apart.** Not by their SigV4 ``Authorization`` header: any client can
send one that starts with ``AWS4-HMAC-SHA256``, and WAF cannot check a signature - it matches
strings in headers, the URI, the query and the first body bytes
(https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-fields-list.html). Each
stack instead has a random secret (:func:`create_origin_secret`, 256 bits, kept in a SecureString
SSM parameter); the chat function sends it in the ``x-gateway-origin`` header of every publish,
and a request skips these rules only when that header equals the secret exactly. A header name
is matched whatever its case (https://docs.aws.amazon.com/waf/latest/APIReference/API_SingleHeader.html).

The trade-off: the secret is readable by whoever may read the chat function's configuration, the
web ACL or the parameter in the account, and it travels (inside TLS) with every publish. Someone
who has it can skip the WAF's rules, but still not AppSync's IAM authorization: only a valid
signature from a principal allowed ``appsync:EventPublish`` publishes anything. Replacing the
parameter (``pulumi up --replace <its URN>``) rotates it. Dropping the exemption instead would put
the functions' publishes - from Lambda addresses many turns share - under a per-IP limit sized
for one user, and answers quoting code under the body rules.

WAF sees HTTP requests only: WebSocket publishes after the connection is made (what the web app
sends) never reach it; the gateway's own limits apply to them (``docs/deploy.md``).
"""

from __future__ import annotations

import secrets

import pulumi
import pulumi_aws as aws
from gateway.environment import ORIGIN_HEADER

#: The common rule set's rules that inspect the request body (AWS's baseline rule groups page).
COMMON_BODY_RULES = (
    "SizeRestrictions_BODY",
    "CrossSiteScripting_BODY",
    "GenericLFI_BODY",
    "GenericRFI_BODY",
    "EC2MetaDataSSRF_BODY",
)
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


def from_gateway_functions(secret: pulumi.Input[str]) -> dict[str, object]:
    """Matches requests whose origin header is exactly the stack's secret (the functions')."""
    return {
        "byte_match_statement": {
            "field_to_match": {"single_header": {"name": ORIGIN_HEADER}},
            "positional_constraint": "EXACTLY",
            "search_string": secret,
            "text_transformations": [{"priority": 0, "type": "NONE"}],
        }
    }


def _from_users(secret: pulumi.Input[str]) -> dict[str, object]:
    return {"not_statement": {"statement": from_gateway_functions(secret)}}


def create_origin_secret(name: str, *, parent: pulumi.Resource) -> aws.ssm.Parameter:
    """The stack's origin secret: 32 random bytes, drawn once when the parameter is created.

    The value is drawn in the program, so ``ignore_changes`` keeps the first one: later runs
    draw another that Pulumi discards, and the parameter's output stays the stored secret
    (https://www.pulumi.com/docs/iac/concepts/options/ignorechanges/). No extra provider plugin
    is needed for it.
    """
    return aws.ssm.Parameter(
        f"{name}-origin-secret",
        type="SecureString",
        description="Header value that marks the gateway functions' publishes to the WAF",
        value=pulumi.Output.secret(secrets.token_urlsafe(32)),
        opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["value"]),
    )


def create_web_acl(
    name: str,
    *,
    protected_arn: pulumi.Input[str],
    origin_secret: pulumi.Input[str],
    rate_limit: int,
    max_body_bytes: int,
    parent: pulumi.Resource,
) -> aws.wafv2.WebAcl:
    """A web ACL for user traffic to the resource at ``protected_arn``: at most ``rate_limit``
    requests per IP per 5 minutes, bodies up to ``max_body_bytes``, and AWS's common rules with
    the body rules counted. Requests carrying ``origin_secret`` (the functions') skip them."""
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
                        "scope_down_statement": _from_users(origin_secret),
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
                            _from_users(origin_secret),
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
                        "scope_down_statement": _from_users(origin_secret),
                        "rule_action_overrides": [
                            {"name": rule, "action_to_use": {"count": {}}}
                            for rule in COMMON_BODY_RULES
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
