"""Which models the gateway may call: every tier's models, and every Bedrock model ARN a role may
invoke, come from the approved catalog in the pack's config and are Active on Bedrock according to
the project's model catalog (``model-catalog.json``) on the day the pack runs.

The tiers are read from the SSM parameter that carries the tier config to the functions, so the
check sees exactly what the functions will enforce.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
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


def _model_catalog() -> ModuleType:
    """The project's ``model_catalog.py`` (standard library only), loaded from its file at the
    repository root, beside the program that reads it too: one catalog module for both.

    The Pulumi CLI runs this pack in its own virtualenv (``policy/.venv``, from
    ``policy/requirements.txt``), where the project is not installed. Installing it there
    (``-e ..`` in that file) would not do: pip resolves such a path against its working
    directory, and ``requirements-dev.txt`` includes that file from the repository root.
    """
    name = "gateway_policies._model_catalog"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "model_catalog.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules[name]


_catalog = _model_catalog()
ACTIVE: str = _catalog.ACTIVE
ModelCatalog = _catalog.ModelCatalog
load_catalog = _catalog.load_catalog

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
    "us.anthropic.claude-haiku-4-5-20251001-v1:0",
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


class _Models:
    """What the pack knows of models: the organisation's approved ids and Bedrock's lifecycle."""

    def __init__(self, approved: set[str], lifecycle: ModelCatalog, today: date) -> None:
        self.approved = approved | {_foundation_model(m) for m in approved}
        self.lifecycle = lifecycle
        self.today = today

    def problem(self, model_id: str) -> str | None:
        """Why ``model_id`` may not be called, or ``None``."""
        if model_id not in self.approved:
            return "is not in the approved model catalog"
        model = self.lifecycle.find(model_id)
        if model is None:
            return "has no lifecycle record in model-catalog.json"
        if model.state_on(self.today) != ACTIVE:
            return f"is not Active: {model.describe(self.today)}"
        return None


def _check_tier_config(
    parameter: PolicyResource, models: _Models, report_violation: ReportViolation
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
            problem = models.problem(str(model))
            if problem:
                report_violation(f"Tier '{tier_name}' {key} '{model}' {problem}.", parameter.urn)


def _model_ids(resources: Iterable[Any]) -> Iterator[str]:
    for arn in resources:
        arn = str(arn)
        for marker in _MODEL_ARN_MARKERS:
            if marker in arn:
                yield arn.split(marker, 1)[1]


def _check_invoke_permissions(
    policy: PolicyResource, models: _Models, report_violation: ReportViolation
) -> None:
    document = maybe(policy.props, POLICY_DOCUMENTS[policy.resource_type])
    if document is UNKNOWN:
        return
    for statement in policy_statements(document):
        actions = [str(a).lower() for a in as_list(maybe(statement, "Action"), lenient=True)]
        if not allows(statement) or not any(a.startswith(_INVOKE_ACTIONS) for a in actions):
            continue
        for model in _model_ids(as_list(maybe(statement, "Resource"), lenient=True)):
            problem = models.problem(model)
            if problem:
                report_violation(
                    f"Policy '{policy.name}' lets a role invoke '{model}', which {problem}.",
                    policy.urn,
                )


def _models_in_catalog(args: StackValidationArgs, report_violation: ReportViolation):
    config = args.get_config()
    as_of = config.get("asOf")
    models = _Models(
        set(config.get("approvedModels") or ()),
        load_catalog(),
        date.fromisoformat(as_of) if as_of else datetime.now(UTC).date(),
    )
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
        _check_tier_config(parameter, models, report_violation)
    for policy in of_type(args.resources, *POLICY_DOCUMENTS):
        _check_invoke_permissions(policy, models, report_violation)


models_in_catalog = StackValidationPolicy(
    name="models-in-catalog",
    description="Every tier's models (allowlist, default and fallback) and every Bedrock model "
    "an IAM policy allows invoking are in the approved model catalog and Active on Bedrock "
    "(model-catalog.json).",
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
            "asOf": {
                "type": "string",
                "format": "date",
                "description": "Judge Bedrock lifecycle states as of this date (YYYY-MM-DD); "
                "today (UTC) when unset.",
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
