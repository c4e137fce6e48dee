"""The stack as a whole: outputs, provider and default tags, and the component tree."""

from __future__ import annotations

import json

import pytest
from infra_support import COMPONENT_PREFIX

from devtools.declare import declare_stack

CONTRACT_OUTPUTS = (
    "region",
    "userPoolId",
    "userPoolClientId",
    "eventsHttpEndpoint",
    "eventsRealtimeEndpoint",
    "inboundNamespace",
    "outboundNamespace",
)
COMPONENTS = (
    "Identity",
    "EventsApi",
    "Metering",
    "Cache",
    "Analytics",
    "Observability",
    "GatewayFunctions",
    "Web",
    "AdminAudit",
)


def test_stack_exports_the_contract_outputs(stack):
    assert set(CONTRACT_OUTPUTS) <= set(stack.outputs)
    assert all(isinstance(stack.outputs[k], str) and stack.outputs[k] for k in CONTRACT_OUTPUTS)


def test_outputs_point_at_the_declared_resources(stack):
    outputs = stack.outputs
    assert outputs["region"] == stack.config["aws:region"]
    assert outputs["userPoolId"] == stack.one("aws:cognito/userPool:UserPool").id
    assert outputs["userPoolClientId"] == stack.one("aws:cognito/userPoolClient:UserPoolClient").id
    assert outputs["inboundNamespace"] == stack.config["ai-gateway:inboundNamespace"]
    assert outputs["outboundNamespace"] == stack.config["ai-gateway:outboundNamespace"]


def test_event_endpoints_are_the_api_hosts_with_the_event_paths(stack):
    dns = stack.one("aws:appsync/api:Api").outputs["dns"]
    assert stack.outputs["eventsHttpEndpoint"] == f"https://{dns['HTTP']}/event"
    assert stack.outputs["eventsRealtimeEndpoint"] == f"wss://{dns['REALTIME']}/event/realtime"


def test_outputs_are_scalars_only(stack):
    assert all(isinstance(v, str | int | float | bool) for v in stack.outputs.values())


def test_one_explicit_provider_carries_region_and_default_tags(stack):
    (provider,) = stack.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == stack.config["aws:region"]
    assert json.loads(provider.inputs["defaultTags"])["tags"] == {
        "project": "ai-gateway",
        "environment": stack.stack,
        "cost-center": stack.config["ai-gateway:costCenter"],
    }


def test_every_aws_resource_uses_the_explicit_provider(stack):
    (provider,) = stack.of_type("pulumi:providers:aws")
    for resource in stack.resources:
        if resource.custom and resource.type.startswith("aws:"):
            assert resource.provider == provider.urn, resource.name


def test_every_taggable_resource_carries_project_environment_and_cost_center(stack):
    expected = {
        "project": "ai-gateway",
        "environment": stack.stack,
        "cost-center": stack.config["ai-gateway:costCenter"],
    }
    taggable = [r for r in stack.resources if "tagsAll" in r.outputs]
    assert len(taggable) > 10
    for resource in taggable:
        assert resource.outputs["tagsAll"].items() >= expected.items(), resource.name


def test_cost_center_comes_from_config():
    stack = declare_stack("dev", {"costCenter": "research-42"})
    table = stack.of_type("aws:dynamodb/table:Table")[0]
    assert table.outputs["tagsAll"]["cost-center"] == "research-42"


@pytest.mark.parametrize("noun", COMPONENTS)
def test_each_component_is_declared_once_at_the_top_of_the_stack(stack, noun):
    (declared,) = stack.of_type(f"{COMPONENT_PREFIX}{noun}")
    assert declared.parent.endswith(f"::pulumi:pulumi:Stack::ai-gateway-{stack.stack}")
    assert stack.children_of(declared.urn)


def test_every_aws_resource_belongs_to_a_component(stack):
    components = {r.urn for r in stack.resources if r.type.startswith(COMPONENT_PREFIX)}
    for resource in stack.resources:
        if resource.type.startswith("aws:"):
            assert resource.parent in components, resource.name
            # The URN spells the parent chain, so a re-parent would replace the resource.
            assert f"{COMPONENT_PREFIX}" in resource.urn.split("::")[2], resource.urn


#: Children whose logical names were shortened so their auto-names fit AWS's limits for the
#: longest stack name accepted; each keeps its old name as an alias (components/naming.py).
SHORTENED = {
    "chat-role",
    "subscribe-role",
    "api-logs-role",
    "handlers-role",
    "firehose-role",
    "turns-stream",
    "analytics",
    "site",
    "access-logs",
    "oac",
}


def test_children_are_named_after_their_component(stack):
    by_urn = {r.urn: r for r in stack.resources}
    prefix = f"ai-gateway-{stack.stack}-"
    for resource in stack.resources:
        parent = by_urn.get(resource.parent or "")
        if parent is not None and parent.type.startswith(COMPONENT_PREFIX):
            short = resource.name.removeprefix(prefix) in SHORTENED
            assert short or resource.name.startswith(f"{parent.name}-"), resource.name
