"""How the Pulumi CLI loads ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml`` before it runs a program,
ported to Python so a test can refuse what ``pulumi preview``/``up`` would refuse.

Ported from pulumi/pulumi at tag ``v3.259.0`` (the Pulumi CLI 3.259.0):

- ``sdk/go/common/workspace/loaders.go`` - ``LoadProjectBytes`` (validate the raw document,
  rewrite ``config: <dir>`` and shorthand values, then ``Project.Validate``) and
  ``LoadProjectStackBytes`` (stack keys without a namespace get the project's);
- ``sdk/go/common/workspace/project.json`` - the project-file JSON schema (draft 2020-12), restated
  below as :data:`PROJECT_SCHEMA` for the sections this loader needs;
- ``sdk/go/common/workspace/project.go`` - ``ValidateProject``, ``Project.Validate``,
  ``ValidateConfigValue`` and ``InferFullTypeName``;
- ``pkg/workspace/config.go`` - ``mergeConfig`` / ``validateStackConfigValue(s)``: required keys,
  project defaults, secrets, and each stack value type-checked against its declared type;
- ``sdk/go/common/resource/config/{key,map,object}.go`` - key parsing, ``Map.Get(key, path=true)``
  (so a declared key such as ``ns:a.b[0]`` reads a nested value, as ``--path`` writes it) and how
  a YAML scalar becomes the string the type checks see (``true`` -> ``"true"``, ``7`` -> ``"7"``),
  while maps and lists become JSON objects.

YAML is read with YAML 1.2 booleans (only ``true``/``false``), as the CLI's go-yaml v3 does, so an
unquoted ``ON`` stays a string here exactly as it would there.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

_SIMPLE_TYPES = ["string", "integer", "boolean", "array", "object"]
_NULLABLE_STRING = {"type": ["string", "null"]}

#: ``project.json``'s rules for the sections a project like this one uses. ``template``,
#: ``packages`` and ``plugins`` are typed only as objects: their inner rules do not apply here.
PROJECT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name"],
    "additionalProperties": True,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": _NULLABLE_STRING,
        "author": _NULLABLE_STRING,
        "website": _NULLABLE_STRING,
        "license": _NULLABLE_STRING,
        "main": _NULLABLE_STRING,
        "stackConfigDir": _NULLABLE_STRING,
        "requiredPulumiVersion": {"type": "string"},
        "runtime": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "options": {"type": "object", "additionalProperties": True},
                    },
                    "additionalProperties": False,
                },
            ]
        },
        "config": {
            "type": ["object", "string", "null"],
            "properties": {"secret": {"type": "boolean"}},
            "additionalProperties": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "integer"},
                    {"type": "boolean"},
                    {"type": "array"},
                    {"$ref": "#/$defs/configTypeDeclaration"},
                ]
            },
        },
        "backend": {
            "type": ["object", "null"],
            "properties": {"url": {"type": "string"}},
            "additionalProperties": False,
        },
        "options": {
            "type": ["object", "null"],
            "properties": {"refresh": {"type": "string", "const": "always"}},
            "additionalProperties": False,
        },
        "template": {"type": ["object", "null"]},
        "packages": {"type": "object"},
        "plugins": {"type": "object"},
    },
    "$defs": {
        "simpleConfigType": {"enum": _SIMPLE_TYPES},
        "configItemsType": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {
                    "oneOf": [
                        {"$ref": "#/$defs/simpleConfigType"},
                        {"$ref": "#/$defs/configItemsType"},
                    ]
                },
                "items": {"$ref": "#/$defs/configItemsType"},
            },
            "if": {"properties": {"type": {"const": "array"}}},
            "then": {"required": ["items"]},
        },
        "configTypeDeclaration": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "type": {"$ref": "#/$defs/simpleConfigType"},
                "items": {"$ref": "#/$defs/configItemsType"},
                "description": {"type": "string"},
                "secret": {"type": "boolean"},
                "default": {},
                "value": {},
            },
        },
    },
}


class CliRefusal(ValueError):
    """What the Pulumi CLI would print before refusing to run the program."""


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML with YAML 1.2 booleans: ``yes``/``on``/... stay strings, as in go-yaml v3."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class ConfigType:
    """One ``config:`` entry of the project (``ProjectConfigType``)."""

    type: str | None
    items: dict[str, Any] | None
    default: Any
    value: Any
    secret: bool


@dataclass(frozen=True)
class Project:
    name: str
    config: dict[str, ConfigType]


@dataclass(frozen=True)
class StackValue:
    """A stack config value as the CLI holds it: a string, or JSON text for maps and lists."""

    text: str
    is_object: bool = False
    secure: bool = False


@dataclass
class Stack:
    config: dict[str, StackValue]
    warnings: list[str] = field(default_factory=list)


# --- the project file -------------------------------------------------------------------------


def load_project(text: str) -> Project:
    """``LoadProjectBytes``: the project as the CLI accepts it, or :class:`CliRefusal`."""
    raw = read_yaml(text)
    _validate_project(raw)
    document = _string_keys(raw)
    config = document.get("config")
    if isinstance(config, str):
        if "stackConfigDir" in document:
            raise CliRefusal(
                "Should not use both config and stackConfigDir to define the stack directory. "
                "Use only stackConfigDir instead."
            )
        config = None
    project = Project(
        name=document["name"],
        config={
            key: _config_type(document["name"], key, spec) for key, spec in (config or {}).items()
        },
    )
    _validate_config_types(project)
    return project


def _validate_project(raw: Any) -> None:
    """``ValidateProject``: a name, then the JSON schema."""
    document = _string_keys(raw)
    if not isinstance(document, dict):
        raise CliRefusal(f"expected project to be an object, was '{type(document).__name__}'")
    if "name" not in document:
        raise CliRefusal("project is missing a 'name' attribute")
    if not isinstance(document["name"], str) or not document["name"]:
        raise CliRefusal("project is missing a non-empty string 'name' attribute")
    validator = jsonschema.Draft202012Validator(PROJECT_SCHEMA)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise CliRefusal(
            "; ".join(f"#/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
        )


def _string_keys(value: Any) -> Any:
    """``SimplifyMarshalledValue``: every mapping key must be a string."""
    if isinstance(value, dict):
        result = {}
        for key, inner in value.items():
            if not isinstance(key, str):
                raise CliRefusal(f"expected only string keys, got '{key}'")
            result[key] = _string_keys(inner)
        return result
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


def _namespaced_by_project(project: str, key: str) -> bool:
    return ":" not in key or key.startswith(f"{project}:")


def _config_type(project: str, key: str, spec: Any) -> ConfigType:
    """``RewriteShorthandConfigValues``: ``key: value`` is a default for the project's own keys
    and a value for anyone else's."""
    if not isinstance(spec, dict):
        if _namespaced_by_project(project, key):
            return ConfigType(None, None, spec, None, False)
        return ConfigType(None, None, None, spec, False)
    return ConfigType(
        spec.get("type"),
        spec.get("items"),
        spec.get("default"),
        spec.get("value"),
        bool(spec.get("secret", False)),
    )


def _validate_config_types(project: Project) -> None:
    """``Project.Validate``."""
    for key, spec in project.config.items():
        if spec.default is not None and spec.value is not None:
            raise CliRefusal(
                f"project config '{key}' cannot have both a 'default' and 'value' attribute"
            )
        if _namespaced_by_project(project.name, key):
            if spec.type == "array" and spec.items is None:
                raise CliRefusal(
                    f"The configuration key '{key}' declares an array but does not specify the "
                    "underlying type via the 'items' attribute"
                )
            typed_default = spec.type is not None and spec.default is not None
            if typed_default and not config_value_matches(spec.type, spec.items, spec.default):
                raise CliRefusal(
                    f"The default value specified for configuration key '{key}' is not of the "
                    f"expected type '{full_type_name(spec.type, spec.items)}'"
                )
        else:
            if spec.type is not None:
                raise CliRefusal(
                    f"Configuration key '{key}' is not namespaced by the project and should not "
                    "define a type"
                )
            if spec.default is not None:
                raise CliRefusal(
                    f"Configuration key '{key}' is not namespaced by the project and should not "
                    "define a default value. Did you mean to use the 'value' attribute instead "
                    "of 'default'?"
                )
            if spec.value is None:
                raise CliRefusal(
                    f"Configuration key '{key}' is namespaced and must provide an attribute 'value'"
                )


def full_type_name(type_name: str | None, items: dict[str, Any] | None) -> str:
    """``InferFullTypeName``: ``array<array<string>>`` and the like."""
    if items is not None:
        return f"array<{full_type_name(items.get('type'), items.get('items'))}>"
    return str(type_name)


def config_value_matches(type_name: str | None, items: dict[str, Any] | None, value: Any) -> bool:
    """``ValidateConfigValue``."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return math.isfinite(value) and value == math.trunc(value)
        if isinstance(value, str):
            return re.fullmatch(r"[+-]?[0-9]+", value) is not None  # strconv.Atoi
        return False
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(config_value_matches(items.get("type"), items.get("items"), v) for v in value)


# --- a stack file ------------------------------------------------------------------------------


def load_stack(project: Project, text: str) -> Stack:
    """``LoadProjectStackBytes``: the stack's config values, keyed ``namespace:name``."""
    raw = read_yaml(text)
    if raw is None:
        return Stack(config={})
    document = _string_keys(raw)
    if not isinstance(document, dict):
        raise CliRefusal(f"expected project to be an object, was '{type(document).__name__}'")
    stack = Stack(config={})
    for key, value in (document.get("config") or {}).items():
        full_key = key if ":" in key else f"{project.name}:{key}"
        namespace, name = _parse_key(full_key)
        if value is None:
            # loaders.go checkForEmptyConfig: a warning today, `null` in a future CLI.
            stack.warnings.append(f'No value for configuration key "{full_key}"')
        stack.config[f"{namespace}:{name}"] = _stack_value(value)
    return stack


def _parse_key(key: str) -> tuple[str, str]:
    """``config.ParseKey``: ``namespace:name`` or the old ``namespace:config:name``."""
    parts = key.split(":")
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) == 3 and parts[1] == "config":
        return parts[0], parts[2]
    raise CliRefusal(
        f"could not parse {key} as a configuration key (configuration keys should be of the "
        "form `<namespace>:<name>`)"
    )


def _stack_value(value: Any) -> StackValue:
    """``object.MarshalString``: scalars become their JSON/string text, the rest JSON objects."""
    if isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str):
        return StackValue(value["secure"], secure=True)
    if isinstance(value, bool | int | float):
        return StackValue(json.dumps(value))
    if isinstance(value, str):
        return StackValue(value)
    return StackValue(json.dumps(value), is_object=True)


def validate_stack(stack_name: str, project: Project, stack: Stack) -> None:
    """``mergeConfig(validate=true)``: every required key set, every typed value of its type."""
    missing = [
        key
        for key, spec in sorted(project.config.items())
        if _lookup(project, stack, key) is None
        and spec.value is None
        and spec.default is None
        and _namespace(project, key) == project.name
    ]
    if missing:
        noun = "value" if len(missing) == 1 else "values"
        raise CliRefusal(
            f"Stack '{stack_name}' is missing configuration {noun} "
            + ", ".join(f"'{k}'" for k in missing)
        )
    for key, spec in sorted(project.config.items()):
        if spec.type is None:
            continue
        value = _lookup(project, stack, key)
        if value is None:
            value = _stack_value(spec.default if spec.value is None else spec.value)
        if spec.secret and not value.secure:
            raise CliRefusal(
                f"Stack '{stack_name}' with configuration key '{key}' must be encrypted as it's "
                "secret"
            )
        if value.secure:
            continue  # checked after decryption, which needs the stack's secrets provider
        content = json.loads(value.text) if value.is_object else value.text
        if not config_value_matches(spec.type, spec.items, content):
            raise CliRefusal(
                f"Stack '{stack_name}' with configuration key '{key}' must be of type "
                f"'{full_type_name(spec.type, spec.items)}'"
            )


def _namespace(project: Project, key: str) -> str:
    return key.split(":", 1)[0] if ":" in key else project.name


_PATH_SEGMENT = re.compile(r'\.?([^.\[\]"]+)|\[(\d+)\]|\["([^"]*)"\]')


def _property_path(name: str) -> list[str | int]:
    """``resource.ParsePropertyPathStrict`` for ``a.b[0]["c.d"]``."""
    path: list[str | int] = []
    position = 0
    while position < len(name):
        match = _PATH_SEGMENT.match(name, position)
        if not match:
            raise CliRefusal(f"invalid config key path: {name!r}")
        key, index, quoted = match.groups()
        path.append(int(index) if index is not None else (key if key is not None else quoted))
        position = match.end()
    if not path or not isinstance(path[0], str) or not path[0]:
        raise CliRefusal(f"invalid config key path: {name!r}")
    return path


def _lookup(project: Project, stack: Stack, key: str) -> StackValue | None:
    """``Map.Get(key, path=true)``: a declared key may name a value nested in a stack object."""
    namespace, _, name = key.rpartition(":") if ":" in key else (project.name, "", key)
    path = _property_path(name)
    root = stack.config.get(f"{namespace}:{path[0]}")
    if root is None or len(path) == 1:
        return root
    node: Any = json.loads(root.text) if root.is_object else root.text
    for segment in path[1:]:
        in_list = isinstance(segment, int) and isinstance(node, list) and segment < len(node)
        in_map = isinstance(segment, str) and isinstance(node, dict) and segment in node
        if not (in_list or in_map):
            return None
        node = node[segment]
    return _stack_value(node)


def check_files(project_file: Path, stack_files: list[Path]) -> dict[str, Stack]:
    """Load ``project_file`` and each stack file as the CLI would; the stacks, by name."""
    project = load_project(project_file.read_text())
    stacks = {}
    for path in stack_files:
        name = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        stack = load_stack(project, path.read_text())
        validate_stack(name, project, stack)
        stacks[name] = stack
    return stacks
