"""Least privilege: identity policies name their actions and resources.

A ``*`` resource is allowed only for actions AWS gives no resource-level permission for; the
default list is X-Ray's trace and sampling calls (what ``tracingConfig: Active`` needs), which
accept nothing but ``"Resource": "*"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._props import allows, as_list, get, policy_statements

#: Identity-policy resources and where their documents live.
_DOCUMENTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
ROLE = "aws:iam/role:Role"

#: Actions that support no resource-level permissions, so "Resource": "*" is the only option.
XRAY_ACTIONS = [
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
]


def identity_policy_documents(args: ResourceValidationArgs) -> Iterator[tuple[str, Any]]:
    """``(label, document)`` for every identity policy document a resource declares."""
    key = _DOCUMENTS.get(args.resource_type)
    if key:
        yield "policy", get(args.props, key)
    elif args.resource_type == ROLE:
        for inline in as_list(get(args.props, "inlinePolicies")):
            yield f"inline policy '{get(inline, 'name')}'", get(inline, "policy")


def _allow_statements(args: ResourceValidationArgs) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for label, document in identity_policy_documents(args):
        for i, statement in enumerate(policy_statements(document)):
            if allows(statement):
                sid = get(statement, "Sid")
                yield f"{label}, statement {sid or i}", statement


def _iam_no_wildcard_actions(args: ResourceValidationArgs, report_violation: ReportViolation):
    for where, statement in _allow_statements(args):
        if get(statement, "NotAction") is not None:
            report_violation(f"{where}: Allow with NotAction grants every other action.")
        wild = [a for a in as_list(get(statement, "Action")) if "*" in str(a)]
        if wild:
            report_violation(
                f"{where}: wildcard action(s) {', '.join(map(str, wild))}; list each action."
            )


iam_no_wildcard_actions = ResourceValidationPolicy(
    name="iam-no-wildcard-actions",
    description="IAM identity policies allow named actions only: no '*', no 'service:*', no "
    "partial wildcards, no Allow with NotAction.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_iam_no_wildcard_actions,
)


def _iam_no_wildcard_resources(args: ResourceValidationArgs, report_violation: ReportViolation):
    exempt = {a.lower() for a in args.get_config().get("wildcardResourceActions") or ()}
    for where, statement in _allow_statements(args):
        if get(statement, "NotResource") is not None:
            report_violation(f"{where}: Allow with NotResource grants every other resource.")
        if "*" not in [str(r) for r in as_list(get(statement, "Resource"))]:
            continue
        actions = [str(a) for a in as_list(get(statement, "Action"))]
        needing = [a for a in actions if a.lower() not in exempt]
        if needing or not actions:
            report_violation(
                f"{where}: Resource '*' for {', '.join(needing) or 'its actions'}; name the "
                "resources (only actions without resource-level permissions, such as X-Ray's, "
                "may use '*')."
            )


iam_no_wildcard_resources = ResourceValidationPolicy(
    name="iam-no-wildcard-resources",
    description="IAM identity policies name their resources; Resource '*' is allowed only for "
    "actions AWS offers no resource-level permission for (X-Ray by default).",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "wildcardResourceActions": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Actions that may be granted on Resource '*' because AWS "
                "supports no narrower resource for them.",
                "default": XRAY_ACTIONS,
            }
        }
    ),
    validate=_iam_no_wildcard_resources,
)

POLICIES = [iam_no_wildcard_actions, iam_no_wildcard_resources]
