"""Helpers for reading what a declared stack holds (see ``devtools.declare``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pulumi

from devtools.declare import DeclaredResource, DeclaredStack

COMPONENT_PREFIX = "ai-gateway:index:"
FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
TABLE = "aws:dynamodb/table:Table"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
NAMESPACE = "aws:appsync/channelNamespace:ChannelNamespace"
DATA_SOURCE = "aws:appsync/dataSource:DataSource"


def comparable(value: Any) -> Any:
    """``value`` with assets and archives replaced by their content hashes, so two declarations
    compare equal exactly when the engine would see the same code."""
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {k: comparable(v) for k, v in sorted(value.assets.items())}}
    if isinstance(value, pulumi.FileArchive):  # a prebuilt zip (the OpenAI door's)
        return {"zip-sha256": hashlib.sha256(Path(value.path).read_bytes()).hexdigest()}
    if isinstance(value, pulumi.FileAsset):
        return {"file-sha256": hashlib.sha256(Path(value.path).read_bytes()).hexdigest()}
    if isinstance(value, pulumi.StringAsset):
        return {"text-sha256": hashlib.sha256(value.text.encode()).hexdigest()}
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [comparable(v) for v in value]
    return value


def policy(resource: DeclaredResource, key: str = "policy") -> dict[str, Any]:
    """A JSON policy input, parsed."""
    return json.loads(resource.inputs[key])


def statements(resource: DeclaredResource, key: str = "policy") -> list[dict[str, Any]]:
    found = policy(resource, key)["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_policies(stack: DeclaredStack, role: DeclaredResource) -> list[DeclaredResource]:
    """Inline policies attached to ``role`` (by its physical name)."""
    return [p for p in stack.of_type(ROLE_POLICY) if p.inputs["role"] == role.outputs["name"]]


def grants(stack: DeclaredStack, role: DeclaredResource) -> dict[str, set[str]]:
    """Action -> resources the role's inline policies allow."""
    allowed: dict[str, set[str]] = {}
    for attached in role_policies(stack, role):
        for statement in statements(attached):
            if statement["Effect"] != "Allow":
                continue
            for action in as_list(statement["Action"]):
                allowed.setdefault(action, set()).update(as_list(statement["Resource"]))
    return allowed


def function(stack: DeclaredStack, handler: str) -> DeclaredResource:
    """The function whose handler is ``handler`` (``chat.handler``...)."""
    found = [f for f in stack.of_type(FUNCTION) if f.inputs["handler"] == handler]
    assert len(found) == 1, f"expected one function with handler {handler}"
    return found[0]


def function_role(stack: DeclaredStack, handler: str) -> DeclaredResource:
    role_arn = function(stack, handler).inputs["role"]
    return next(r for r in stack.of_type(ROLE) if r.outputs["arn"] == role_arn)


def component(stack: DeclaredStack, noun: str) -> DeclaredResource:
    return stack.one(f"{COMPONENT_PREFIX}{noun}")
