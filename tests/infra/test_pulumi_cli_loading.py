"""The project and every stack file load as the Pulumi CLI loads them before ``preview``/``up``.

The rules are a port of the Pulumi CLI 3.259.0's loaders (pulumi/pulumi ``v3.259.0``:
``sdk/go/common/workspace/project.go``, ``project.json``, ``loaders.go`` and
``pkg/workspace/config.go``), in ``pulumi_cli_rules.py``. Each seeded violation below is a file
the real CLI refuses, with the message it prints.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pulumi_cli_rules import (
    CliRefusal,
    check_files,
    load_project,
    load_stack,
    validate_stack,
)

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILE = ROOT / "Pulumi.yaml"
STACK_FILES = sorted(ROOT.glob("Pulumi.*.yaml"))


def _project(**config_changes) -> str:
    """``Pulumi.yaml`` with ``config`` entries replaced (``None`` removes one)."""
    document = yaml.safe_load(PROJECT_FILE.read_text())
    for key, spec in config_changes.items():
        if spec is None:
            document["config"].pop(key, None)
        else:
            document["config"][key] = spec
    return yaml.safe_dump(document)


def _stack_refusal(stack_text: str, project_text: str | None = None) -> str:
    project = load_project(project_text or PROJECT_FILE.read_text())
    with pytest.raises(CliRefusal) as refused:
        validate_stack("seeded", project, load_stack(project, stack_text))
    return str(refused.value)


def test_there_are_stack_files_to_check():
    assert {p.name for p in STACK_FILES} >= {"Pulumi.dev.yaml", "Pulumi.prod.yaml"}


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.name)
def test_every_stack_loads_without_refusal_or_warning(stack_file):
    stacks = check_files(PROJECT_FILE, [stack_file])
    (stack,) = stacks.values()
    assert stack.warnings == []


PROJECT_VIOLATIONS = [
    pytest.param(
        {"ai-gateway:callbackUrls": {"type": "array", "default": ["https://x.example/"]}},
        "declares an array but does not specify the underlying type via the 'items' attribute",
        id="array-without-items",
    ),
    pytest.param(
        {"ai-gateway:logRetentionDays": {"type": "integer", "default": "thirty"}},
        "default value specified for configuration key 'ai-gateway:logRetentionDays' is not of "
        "the expected type 'integer'",
        id="default-of-wrong-type",
    ),
    pytest.param(
        {"ai-gateway:waf": {"type": "boolean", "default": "yes"}},
        "not of the expected type 'boolean'",
        id="boolean-default-yes",
    ),
    pytest.param(
        {
            "ai-gateway:callbackUrls": {
                "type": "array",
                "items": {"type": "integer"},
                "default": ["a"],
            }
        },
        "expected type 'array<integer>'",
        id="array-default-items-of-wrong-type",
    ),
    pytest.param(
        {"ai-gateway:mfa": {"type": "enum", "default": "ON"}},
        "#/config/ai-gateway:mfa",
        id="unknown-type-name",
    ),
    pytest.param(
        {"ai-gateway:mfa": {"type": "string", "desciption": "typo"}},
        "#/config/ai-gateway:mfa",
        id="unknown-attribute",
    ),
    pytest.param(
        {"ai-gateway:mfa": {"type": "string", "default": "ON", "value": "OFF"}},
        "cannot have both a 'default' and 'value' attribute",
        id="default-and-value",
    ),
    pytest.param(
        {"aws:region": {"type": "string", "value": "us-east-1"}},
        "is not namespaced by the project and should not define a type",
        id="other-namespace-typed",
    ),
    pytest.param(
        {"aws:region": {"default": "us-east-1"}},
        "should not define a default value",
        id="other-namespace-default",
    ),
    pytest.param(
        {"aws:region": {"description": "no value"}},
        "must provide an attribute 'value'",
        id="other-namespace-without-value",
    ),
    pytest.param(
        {"ai-gateway:x": {"type": "array", "items": {"type": "array"}}},
        "#/config/ai-gateway:x: ",
        id="nested-array-without-items",
    ),
]


@pytest.mark.parametrize(("changes", "message"), PROJECT_VIOLATIONS)
def test_project_violations_are_refused(changes, message):
    with pytest.raises(CliRefusal) as refused:
        load_project(_project(**changes))
    assert message in str(refused.value)


def test_project_without_a_name_is_refused():
    with pytest.raises(CliRefusal, match="missing a 'name' attribute"):
        load_project("runtime: python\n")


def test_project_with_a_bad_runtime_is_refused():
    with pytest.raises(CliRefusal, match="#/runtime"):
        load_project("name: p\nruntime: {name: python, toolchain: pip}\n")


STACK_VIOLATIONS = [
    pytest.param(
        "config:\n  ai-gateway:logRetentionDays: thirty\n",
        "Stack 'seeded' with configuration key 'ai-gateway:logRetentionDays' must be of type "
        "'integer'",
        id="integer-given-text",
    ),
    pytest.param(
        "config:\n  ai-gateway:waf: yes\n",
        "'ai-gateway:waf' must be of type 'boolean'",
        id="boolean-given-yes",
    ),
    pytest.param(
        "config:\n  ai-gateway:tiers: [free]\n",
        "'ai-gateway:tiers' must be of type 'object'",
        id="object-given-list",
    ),
    pytest.param(
        "config:\n  ai-gateway:callbackUrls: https://x.example/\n",
        "'ai-gateway:callbackUrls' must be of type 'array<string>'",
        id="array-given-string",
    ),
    pytest.param(
        "config:\n  ai-gateway:callbackUrls: [https://x.example/, 5]\n",
        "must be of type 'array<string>'",
        id="array-item-of-wrong-type",
    ),
    pytest.param(
        "config:\n  ai-gateway:a:b:c: 1\n",
        "could not parse ai-gateway:a:b:c as a configuration key",
        id="key-with-two-colons",
    ),
]


@pytest.mark.parametrize(("stack_text", "message"), STACK_VIOLATIONS)
def test_stack_values_of_the_wrong_type_are_refused(stack_text, message):
    base = "config:\n  ai-gateway:defaultTier: free\n  ai-gateway:tiers: {free: {}}\n"
    extra = stack_text.removeprefix("config:\n")
    assert message in _stack_refusal(base + extra)


def test_stack_missing_a_required_key_is_refused():
    message = _stack_refusal("config:\n  ai-gateway:defaultTier: free\n")
    assert "Stack 'seeded' is missing configuration value 'ai-gateway:tiers'" in message


def test_secret_key_needs_an_encrypted_stack_value():
    project = _project(**{"ai-gateway:alarmEmail": {"type": "string", "secret": True}})
    message = _stack_refusal(
        "config:\n  ai-gateway:defaultTier: free\n  ai-gateway:tiers: {}\n"
        "  ai-gateway:alarmEmail: a@b.example\n",
        project,
    )
    assert "must be encrypted as it's secret" in message


def test_a_declared_path_checks_the_nested_value_set_with_path():
    # `pulumi config set --path 'ai-gateway:limits.daily' ...` nests under ai-gateway:limits; a
    # project key declared with that path is type-checked against the nested value.
    project = _project(**{"ai-gateway:limits.daily": {"type": "integer"}})
    stack = (
        "config:\n  ai-gateway:defaultTier: free\n  ai-gateway:tiers: {}\n"
        "  ai-gateway:limits: {daily: many}\n"
    )
    assert "'ai-gateway:limits.daily' must be of type 'integer'" in _stack_refusal(stack, project)
    fixed = stack.replace("many", "500")
    loaded = load_project(project)
    validate_stack("seeded", loaded, load_stack(loaded, fixed))


def test_unquoted_on_is_a_string_as_in_the_cli():
    # go-yaml v3 reads `ON` as a string, so the CLI accepts it for a string key (PyYAML's
    # default YAML 1.1 reading would make it a boolean).
    project = load_project(PROJECT_FILE.read_text())
    stack = load_stack(
        project,
        "config:\n  ai-gateway:defaultTier: free\n  ai-gateway:tiers: {}\n  ai-gateway:mfa: ON\n",
    )
    assert stack.config["ai-gateway:mfa"].text == "ON"
    validate_stack("seeded", project, stack)


def test_empty_value_is_warned_about():
    project = load_project(PROJECT_FILE.read_text())
    stack = load_stack(project, "config:\n  ai-gateway:alarmEmail:\n")
    assert stack.warnings == ['No value for configuration key "ai-gateway:alarmEmail"']


def test_keys_without_namespace_belong_to_the_project():
    project = load_project(PROJECT_FILE.read_text())
    stack = load_stack(project, "config:\n  defaultTier: free\n  tiers: {}\n  waf: maybe\n")
    with pytest.raises(CliRefusal, match="'ai-gateway:waf' must be of type 'boolean'"):
        validate_stack("seeded", project, stack)
