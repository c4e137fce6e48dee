"""Run the policy pack the way ``pulumi preview --policy-pack policy`` does, with no CLI.

The pack's own ``__main__.py`` builds a ``PolicyPack``, which creates pulumi-policy's analyzer
servicer and would serve it over gRPC to the CLI. Here that hand-off is intercepted: the servicer
is taken just before it would be added to a gRPC server, and this module plays the CLI's part,
calling the same RPC methods with the same protobuf messages:

1. ``GetAnalyzerInfo`` - the policies, their enforcement levels and config schemas;
2. ``Configure`` - each policy's config: schema defaults, then the pack's initial config, then
   the user's config file, validated against the schemas (as the CLI reconciles it);
3. ``ConfigureStack`` - the stack and project names;
4. ``Analyze`` once per resource, with its inputs (what ``ResourceValidationPolicy`` sees);
5. ``AnalyzeStack`` once, with every resource's outputs (what ``StackValidationPolicy`` sees).

Violations are the diagnostics the servicer answers with. Used by ``tests/policy`` and
``policy/report.py``; ``analyze_stack`` declares a stack with ``devtools.declare`` (Pulumi mocks).
"""

from __future__ import annotations

import json
import runpy
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from unittest import mock

import jsonschema
import pulumi
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import policy as pulumi_policy_module
from pulumi_policy.deserialize import serialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

PACK_DIR = Path(__file__).resolve().parent
ROOT = PACK_DIR.parent
PROJECT = "ai-gateway"
DEFAULT_CONFIG_FILE = PACK_DIR / "config.json"

_LEVELS = {name.lower(): value for name, value in analyzer_pb2.EnforcementLevel.items()}


class PolicyConfigError(ValueError):
    """The policy config does not fit the pack: unknown policy, bad level or schema mismatch."""


class Resource(Protocol):
    """What the runner needs of a resource (``devtools.declare.DeclaredResource`` fits)."""

    type: str
    name: str
    urn: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    parent: str | None
    provider: str | None


@dataclass(frozen=True)
class PolicyInfo:
    """One policy as the analyzer describes it, with the config it ran with."""

    name: str
    description: str
    enforcement_level: str
    kind: str  # "resource" | "stack"
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Violation:
    """One diagnostic the analyzer reported."""

    policy: str
    enforcement_level: str
    message: str  # what is wrong, without the policy's description
    urn: str
    resource_name: str | None = None
    resource_type: str | None = None

    @property
    def mandatory(self) -> bool:
        return self.enforcement_level == "mandatory"


@dataclass(frozen=True)
class PackResult:
    """Everything one run of the pack over one stack reported."""

    stack: str
    policies: tuple[PolicyInfo, ...]
    violations: tuple[Violation, ...]
    resource_count: int = 0

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.mandatory]

    def of_policy(self, name: str) -> list[Violation]:
        return [v for v in self.violations if v.policy == name]


class _ServicerHandOff(Exception):
    def __init__(self, servicer: Any) -> None:
        super().__init__("analyzer servicer built")
        self.servicer = servicer


def load_analyzer(pack_dir: Path = PACK_DIR) -> Any:
    """The analyzer servicer the pack's ``PolicyPack(...)`` builds, without serving it.

    The pack runs as ``python -m pulumi.policy`` runs it (``runpy.run_path`` of the pack folder);
    the servicer is captured where ``PolicyPack`` would add it to its gRPC server.
    """

    def hand_off(servicer: Any, _server: Any) -> None:
        raise _ServicerHandOff(servicer)

    no_grpc = types.SimpleNamespace(server=lambda *args, **kwargs: None)
    no_registration = types.SimpleNamespace(add_AnalyzerServicer_to_server=hand_off)
    with (
        mock.patch.object(pulumi_policy_module, "grpc", no_grpc),
        mock.patch.object(pulumi_policy_module, "analyzer_pb2_grpc", no_registration),
    ):
        try:
            runpy.run_path(str(pack_dir), run_name="__main__")
        except _ServicerHandOff as handed:
            return handed.servicer
    raise RuntimeError(f"{pack_dir / '__main__.py'} did not construct a PolicyPack")


# --- the CLI's side of the config (pulumi's ReconcilePolicyPackConfig) ---------------------------


def load_config_file(path: Path | str = DEFAULT_CONFIG_FILE) -> dict[str, Any]:
    """A ``--policy-pack-config`` JSON file."""
    text = Path(path).read_text()
    return json.loads(text) if text.strip() else {}


def _split(name: str, value: Any) -> tuple[int | None, dict[str, Any]]:
    """A config entry (a level, or an object with an optional ``enforcementLevel``)."""
    if isinstance(value, str):
        value = {"enforcementLevel": value}
    if not isinstance(value, Mapping):
        raise PolicyConfigError(f"{name}: must be an enforcement level or an object")
    props = dict(value)
    level = props.pop("enforcementLevel", None)
    if level is not None and level not in _LEVELS:
        raise PolicyConfigError(
            f"{name}: {level!r} is not an enforcement level ({', '.join(_LEVELS)})"
        )
    return (_LEVELS[level] if level is not None else None), props


def reconcile_config(
    info: analyzer_pb2.AnalyzerInfo, user_config: Mapping[str, Any] | None
) -> dict[str, tuple[int, dict[str, Any]]]:
    """Each policy's ``(enforcement level, properties)``: schema defaults, the pack's initial
    config, then ``user_config`` (``"all"`` sets every level), validated against the schemas."""
    schemas = {p.name: json_format.MessageToDict(p.configSchema) for p in info.policies}
    result: dict[str, tuple[int, dict[str, Any]]] = {}
    for policy in info.policies:
        properties = schemas[policy.name].get("properties", {})
        defaults = {k: v["default"] for k, v in properties.items() if "default" in v}
        result[policy.name] = (policy.enforcementLevel, defaults)

    initial = {
        name: {
            **json_format.MessageToDict(value.properties),
            "enforcementLevel": analyzer_pb2.EnforcementLevel.Name(value.enforcementLevel).lower(),
        }
        for name, value in info.initialConfig.items()
    }
    for layer in (initial, dict(user_config or {})):
        if "all" in layer:
            all_level, _ = _split("all", layer["all"])
            if all_level is not None:
                result = {name: (all_level, props) for name, (_, props) in result.items()}
        for name, value in layer.items():
            if name == "all":
                continue
            if name not in result:
                raise PolicyConfigError(
                    f"{name}: the pack has no such policy (policies: {', '.join(sorted(result))})"
                )
            level, props = _split(name, value)
            old_level, old_props = result[name]
            result[name] = (old_level if level is None else level, {**old_props, **props})

    errors = []
    for name, (_, props) in result.items():
        schema = {"type": "object", **schemas[name]}
        for error in jsonschema.Draft7Validator(schema).iter_errors(props):
            where = ".".join(map(str, error.absolute_path)) or "(root)"
            errors.append(f"{name}: {where}: {error.message}")
    if errors:
        raise PolicyConfigError("invalid policy pack config:\n  " + "\n  ".join(errors))
    return result


# --- the engine's side of Analyze / AnalyzeStack -------------------------------------------------


def _wire(value: Any) -> Any:
    """A property value as the engine puts it in a ``google.protobuf.Struct``."""
    if isinstance(value, Mapping):
        return {str(k): _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return _wire(serialize_properties({"value": value})["value"])
    if type(value).__name__ == "Unknown":  # pulumi.output.Unknown: not known until deployment
        return UNKNOWN_STRING_VALUE
    if isinstance(value, pulumi.Resource):
        return str(getattr(value, "_name", value))
    return str(value)


def _struct(props: Mapping[str, Any] | None) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(_wire(dict(props or {})))
    return struct


def _provider_message(
    resource: Resource, by_urn: Mapping[str, Resource]
) -> analyzer_pb2.AnalyzerProviderResource | None:
    provider = by_urn.get(resource.provider or "")
    if provider is None:
        return None
    return analyzer_pb2.AnalyzerProviderResource(
        type=provider.type,
        properties=_struct(provider.inputs),
        urn=provider.urn,
        name=provider.name,
    )


def _options(resource: Resource) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(parent=resource.parent or "")


def _violations(
    response: analyzer_pb2.AnalyzeResponse, by_urn: Mapping[str, Resource], subject: str = ""
) -> list[Violation]:
    """The diagnostics of one response. ``subject`` is the resource ``Analyze`` was asked about:
    its diagnostics carry no URN, and the engine reports them against that resource."""
    found = []
    for diagnostic in response.diagnostics:
        urn = diagnostic.urn or subject
        resource = by_urn.get(urn)
        message = diagnostic.message
        if diagnostic.description and message.startswith(diagnostic.description):
            message = message[len(diagnostic.description) :].lstrip("\n") or message
        found.append(
            Violation(
                policy=diagnostic.policyName,
                enforcement_level=analyzer_pb2.EnforcementLevel.Name(
                    diagnostic.enforcementLevel
                ).lower(),
                message=message,
                urn=urn,
                resource_name=resource.name if resource else None,
                resource_type=resource.type if resource else None,
            )
        )
    return found


def analyze(
    resources: Iterable[Resource],
    *,
    stack: str,
    config: Mapping[str, Any] | None = None,
    pack_dir: Path = PACK_DIR,
) -> PackResult:
    """Run the pack over ``resources`` (one stack) and collect what it reports.

    ``config`` is a ``--policy-pack-config`` document (policy name -> level or options).
    """
    resources = list(resources)
    by_urn = {r.urn: r for r in resources}
    analyzer = load_analyzer(pack_dir)
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), None)
    reconciled = reconcile_config(info, config)
    analyzer.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                name: analyzer_pb2.PolicyConfig(enforcementLevel=level, properties=_struct(props))
                for name, (level, props) in reconciled.items()
            }
        ),
        None,
    )
    if hasattr(analyzer, "ConfigureStack"):
        analyzer.ConfigureStack(
            analyzer_pb2.AnalyzerStackConfigureRequest(stack=stack, project=PROJECT, dry_run=True),
            None,
        )

    violations: list[Violation] = []
    for r in resources:
        response = analyzer.Analyze(
            analyzer_pb2.AnalyzeRequest(
                type=r.type,
                properties=_struct(r.inputs),
                urn=r.urn,
                name=r.name,
                options=_options(r),
                provider=_provider_message(r, by_urn),
            ),
            None,
        )
        violations += _violations(response, by_urn, subject=r.urn)
    stack_response = analyzer.AnalyzeStack(
        analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type=r.type,
                    properties=_struct(r.outputs),
                    urn=r.urn,
                    name=r.name,
                    options=_options(r),
                    provider=_provider_message(r, by_urn),
                    parent=r.parent or "",
                )
                for r in resources
            ]
        ),
        None,
    )
    violations += _violations(stack_response, by_urn)

    policies = tuple(
        PolicyInfo(
            name=p.name,
            description=p.description,
            enforcement_level=analyzer_pb2.EnforcementLevel.Name(reconciled[p.name][0]).lower(),
            kind="stack" if p.policy_type == analyzer_pb2.POLICY_TYPE_STACK else "resource",
            config=reconciled[p.name][1],
        )
        for p in info.policies
    )
    return PackResult(
        stack=stack,
        policies=policies,
        violations=tuple(violations),
        resource_count=len(resources),
    )


def analyze_stack(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
) -> PackResult:
    """Declare ``stack`` under Pulumi mocks (``devtools.declare``) and run the pack over it.

    ``config`` defaults to the pack's ``policy/config.json``, as CI passes it.
    """
    from devtools.declare import declare_stack

    declared = declare_stack(stack, overrides)
    if config is None:
        config = load_config_file()
    return analyze(declared.resources, stack=stack, config=config)


__all__ = [
    "PackResult",
    "PolicyConfigError",
    "PolicyInfo",
    "Violation",
    "analyze",
    "analyze_stack",
    "load_analyzer",
    "load_config_file",
    "reconcile_config",
]
