"""A regional WAF web ACL: a per-IP rate limit and AWS's managed common rule set."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def create_web_acl(
    name: str, *, protected_arn: pulumi.Input[str], rate_limit: int, parent: pulumi.Resource
) -> aws.wafv2.WebAcl:
    """A web ACL blocking any IP above ``rate_limit`` requests per 5 minutes and requests the
    AWS common rule set flags, associated with the resource at ``protected_arn``."""
    metric = name.replace("-", "")
    web_acl = aws.wafv2.WebAcl(
        f"{name}-waf",
        scope="REGIONAL",
        description="Per-IP rate limit and AWS managed common rules",
        default_action={"allow": {}},
        rules=[
            {
                "name": "rate-limit-per-ip",
                "priority": 0,
                "action": {"block": {}},
                "statement": {
                    "rate_based_statement": {"limit": rate_limit, "aggregate_key_type": "IP"}
                },
                "visibility_config": _visibility(f"{metric}RateLimit"),
            },
            {
                "name": "aws-managed-common-rules",
                "priority": 1,
                "override_action": {"none": {}},
                "statement": {
                    "managed_rule_group_statement": {
                        "vendor_name": "AWS",
                        "name": "AWSManagedRulesCommonRuleSet",
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
