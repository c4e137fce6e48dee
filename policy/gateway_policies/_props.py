"""Reading resource properties the way the engine hands them to a policy pack.

Properties are camelCase, numbers arrive as floats, provider object config arrives JSON-encoded,
and during a preview some values are unknown (reading one raises ``UnknownValueError``). Stack
policies use :func:`maybe` so one unknown value skips one check instead of the whole policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource, ResourceValidationArgs
from pulumi_policy.proxy import UnknownValueError

#: Returned by :func:`maybe` for a value only known after deployment.
UNKNOWN = object()
_MISSING = object()

#: AppSync Events auth modes that let end users (not the gateway's own IAM roles) in.
USER_AUTH_TYPES = frozenset(
    {"AMAZON_COGNITO_USER_POOLS", "OPENID_CONNECT", "API_KEY", "AWS_LAMBDA"}
)

#: Schema of the option every production-only policy takes.
PRODUCTION_ENVIRONMENTS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Values of the environment tag (the provider's default tag, set from the "
    "stack name) that mark a production stack.",
    "default": ["prod"],
}
#: Config schema of a policy whose only option is :data:`PRODUCTION_ENVIRONMENTS`.
PRODUCTION_ONLY = PolicyConfigSchema(properties={"productionEnvironments": PRODUCTION_ENVIRONMENTS})


def _walk(props: Any, path: tuple[str | int, ...], default: Any) -> Any:
    node = props
    for key in path:
        if isinstance(key, int):
            if not is_sequence(node) or key >= len(node):
                return default
        elif not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def get(props: Any, *path: str | int, default: Any = None) -> Any:
    """``props[path...]``, ``default`` where a key is missing.

    An unknown value raises ``UnknownValueError``: in a resource policy, pulumi-policy turns that
    into an advisory "can't run during preview" and the policy runs again at ``pulumi up``.
    """
    return _walk(props, path, default)


def maybe(props: Any, *path: str | int, default: Any = None) -> Any:
    """Like :func:`get`, but an unknown value comes back as :data:`UNKNOWN` (stack policies)."""
    try:
        return _walk(props, path, default)
    except UnknownValueError:
        return UNKNOWN


def is_sequence(value: Any) -> bool:
    """A list property (the engine's proxies are Sequences, not lists)."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def as_list(value: Any, *, lenient: bool = False) -> list[Any]:
    """A scalar or list property as a list (IAM's ``Action: "s3:GetObject"`` and friends).

    An unknown element raises, or with ``lenient`` comes back as :data:`UNKNOWN`.
    """
    if value is None or value is UNKNOWN:
        return []
    if is_sequence(value):
        return [maybe(value, i) for i in range(len(value))] if lenient else list(value)
    return [value]


def decode_json(value: Any) -> Any:
    """A JSON-encoded property (policy documents, provider object config) decoded, or as is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def provider_default_tags(provider: Any) -> dict[str, str]:
    """The ``defaultTags.tags`` of a resource's explicit AWS provider (``{}`` without one)."""
    if provider is None:
        return {}
    default_tags = decode_json(maybe(provider.props, "defaultTags"))
    tags = maybe(default_tags, "tags") if isinstance(default_tags, Mapping) else None
    tags = decode_json(tags)
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else {}


def effective_tags(props: Mapping[str, Any], provider: Any) -> dict[str, Any] | None:
    """The tags a resource really gets: provider default tags, ``tags`` and ``tagsAll``.

    ``None`` for a resource that shows no sign of being taggable.
    """
    tags = maybe(props, "tags", default=_MISSING)
    tags_all = maybe(props, "tagsAll", default=_MISSING)
    if tags is _MISSING and tags_all is _MISSING:
        return None
    merged: dict[str, Any] = dict(provider_default_tags(provider))
    for layer in (tags, tags_all):
        if isinstance(layer, Mapping):
            merged.update({str(k): maybe(layer, str(k)) for k in layer})
    return merged


def environment_of(props: Mapping[str, Any], provider: Any) -> str | None:
    """The stack's environment: the provider's default ``environment`` tag, else the resource's.

    The provider's default tag comes from the stack name, so a resource cannot opt itself out of
    production rules by tagging itself differently.
    """
    from_provider = provider_default_tags(provider).get("environment")
    if from_provider:
        return from_provider
    for key in ("tagsAll", "tags"):
        value = maybe(props, key, "environment")
        if isinstance(value, str) and value:
            return value
    return None


def is_production(args: ResourceValidationArgs | PolicyResource, config: Mapping[str, Any]) -> bool:
    """True when the resource belongs to a stack the config calls production."""
    environments = config.get("productionEnvironments") or PRODUCTION_ENVIRONMENTS["default"]
    return environment_of(args.props, args.provider) in set(environments)


def auth_types(modes: Any) -> set[str] | None:
    """``[{"authType": "AWS_IAM"}, ...]`` as ``{"AWS_IAM"}``; ``None`` when not set or unknown."""
    if not is_sequence(modes):
        return None
    types = {maybe(mode, "authType") for mode in as_list(modes, lenient=True)}
    return {t for t in types if isinstance(t, str)}


def policy_statements(document: Any) -> Iterator[Mapping[str, Any]]:
    """The statements of an IAM policy document given as JSON text or as an object."""
    doc = decode_json(document)
    if not isinstance(doc, Mapping):
        return
    for statement in as_list(maybe(doc, "Statement"), lenient=True):
        if isinstance(statement, Mapping):
            yield statement


def allows(statement: Mapping[str, Any]) -> bool:
    return maybe(statement, "Effect", default="Allow") == "Allow"


def of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]


def depends_on(resource: PolicyResource, prop: str, target: PolicyResource) -> bool:
    """Whether the engine says ``resource``'s ``prop`` was computed from ``target``."""
    return any(dep.urn == target.urn for dep in resource.property_dependencies.get(prop, []))


def refers_to(
    resource: PolicyResource, prop: str, target: PolicyResource, target_keys: Iterable[str]
) -> bool:
    """Whether ``resource.props[prop]`` points at ``target``.

    The engine's property dependencies answer even during a preview, when the value itself is
    still unknown; otherwise the value must equal one of ``target``'s identifying outputs.
    """
    if depends_on(resource, prop, target):
        return True
    value = maybe(resource.props, prop)
    if value is None or value is UNKNOWN:
        return False
    return any(
        (candidate := maybe(target.props, key)) is not UNKNOWN and candidate == value
        for key in target_keys
    )
