"""Which models the gateway may call: every tier's models, and every Bedrock model ARN a role may
invoke, come from the approved catalog in the pack's config.

The tiers are read from the SSM parameter that carries the tier config to the functions, so the
check sees exactly what the functions will enforce.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._props import UNKNOWN, allows, as_list, decode_json, maybe, of_type, policy_statements

PARAMETER = "aws:ssm/parameter:Parameter"
POLICY_DOCUMENTS = {"aws:iam/rolePolicy:RolePolicy": "policy", "aws:iam/policy:Policy": "policy"}
_INVOKE_ACTIONS = ("bedrock:invokemodel", "bedrock:converse")
_MODEL_ARN_MARKERS = ("foundation-model/", "inference-profile/")
# Cross-region inference profiles are a geography prefix on a foundation-model id.
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")

DEFAULT_CATALOG = [
    "amazon.nova-micro-v1:0",
    "amazon.nova-lite-v1:0",
    "amazon.nova-pro-v1:0",
    "us.anthropic.claude-3-5-haiku-20241022-v1:0",
    "us.anthropic.claude-sonnet-4-20250514-v1:0",
]


def _foundation_model(model_id: str) -> str:
    for prefix in _PROFILE_PREFIXES:
        if model_id.startswith(prefix) and "." in model_id[len(prefix) :]:
            return model_id[len(prefix) :]
    return model_id


def _tier_models(tier: Any) -> Iterator[tuple[str, Any]]:
    for i, model in enumerate(as_list(maybe(tier, "models"), lenient=True)):
        yield f"models[{i}]", model
    for key in ("defaultModel", "fallbackModel"):
        if maybe(tier, key) is not None:
            yield key, maybe(tier, key)


def _check_tier_config(
    parameter: PolicyResource, catalog: set[str], report_violation: ReportViolation
) -> None:
    value = maybe(parameter.props, "value")
    if value is None:
        value = maybe(parameter.props, "insecureValue")
    if value is UNKNOWN:
        return
    document = decode_json(value)
    tiers = maybe(document, "tiers")
    if not hasattr(tiers, "items"):
        report_violation(
            f"Tier config parameter '{parameter.name}' holds no {{\"tiers\": {{...}}}} JSON "
            "document, so its models cannot be checked.",
            parameter.urn,
        )
        return
    for tier_name in tiers:
        for key, model in _tier_models(maybe(tiers, tier_name)):
            if model not in catalog:
                report_violation(
                    f"Tier '{tier_name}' {key} '{model}' is not in the approved model catalog.",
                    parameter.urn,
                )


def _model_ids(resources: Iterable[Any]) -> Iterator[str]:
    for arn in resources:
        arn = str(arn)
        for marker in _MODEL_ARN_MARKERS:
            if marker in arn:
                yield arn.split(marker, 1)[1]


def _check_invoke_permissions(
    policy: PolicyResource, catalog: set[str], report_violation: ReportViolation
) -> None:
    document = maybe(policy.props, POLICY_DOCUMENTS[policy.resource_type])
    if document is UNKNOWN:
        return
    approved = catalog | {_foundation_model(m) for m in catalog}
    for statement in policy_statements(document):
        actions = [str(a).lower() for a in as_list(maybe(statement, "Action"), lenient=True)]
        if not allows(statement) or not any(a.startswith(_INVOKE_ACTIONS) for a in actions):
            continue
        for model in _model_ids(as_list(maybe(statement, "Resource"), lenient=True)):
            if model not in approved:
                report_violation(
                    f"Policy '{policy.name}' lets a role invoke '{model}', which is not in the "
                    "approved model catalog.",
                    policy.urn,
                )


def _models_in_catalog(args: StackValidationArgs, report_violation: ReportViolation):
    config = args.get_config()
    catalog = set(config.get("approvedModels") or ())
    suffix = config.get("tierConfigParameterSuffix") or "/tier-config"
    parameters = [
        p
        for p in of_type(args.resources, PARAMETER)
        if isinstance(maybe(p.props, "name"), str) and maybe(p.props, "name").endswith(suffix)
    ]
    if not parameters:
        report_violation(
            f"No SSM parameter named '*{suffix}' carries the tier config, so the tiers' models "
            "cannot be checked against the approved catalog."
        )
    for parameter in parameters:
        _check_tier_config(parameter, catalog, report_violation)
    for policy in of_type(args.resources, *POLICY_DOCUMENTS):
        _check_invoke_permissions(policy, catalog, report_violation)


models_in_catalog = StackValidationPolicy(
    name="models-in-catalog",
    description="Every tier's models (allowlist, default and fallback) and every Bedrock model "
    "an IAM policy allows invoking are in the approved model catalog.",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "approvedModels": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": "Bedrock model and inference-profile ids the organisation approves.",
                "default": DEFAULT_CATALOG,
            },
            "tierConfigParameterSuffix": {
                "type": "string",
                "description": "How the name of the SSM parameter carrying the tier config ends.",
                "default": "/tier-config",
            },
        }
    ),
    validate=_models_in_catalog,
)

POLICIES = [models_in_catalog]
