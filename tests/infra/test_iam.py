"""Least privilege: every role may do only what its function needs, on named resources."""

from __future__ import annotations

import pytest
from infra_support import (
    ROLE,
    ROLE_POLICY,
    as_list,
    function,
    function_role,
    grants,
    statements,
)

from devtools.declare import declare_stack

XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
MODEL_POLICY_SUFFIX = "-chat-model-access"
DOOR_MODEL_POLICY_SUFFIX = "-openai-model-access"

DEV_MODEL_ARNS = {
    "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0",
    "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
    "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
    "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    # An inference profile routes across regions, so its foundation model is allowed everywhere.
    "arn:aws:bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0",
}


def _documents(stack):
    for policy in stack.of_type(ROLE_POLICY):
        yield policy.name, statements(policy)
    for role in stack.of_type(ROLE):
        yield role.name, statements(role, "assumeRolePolicy")


def test_no_policy_allows_a_wildcard_action(stack):
    for name, found in _documents(stack):
        for statement in found:
            for action in as_list(statement.get("Action", [])):
                assert "*" not in action, f"{name}: {action}"


def test_only_xray_is_granted_on_every_resource(stack):
    for policy in stack.of_type(ROLE_POLICY):
        for statement in statements(policy):
            if "*" in as_list(statement["Resource"]):
                assert set(as_list(statement["Action"])) <= XRAY, policy.name


def test_chat_may_stream_only_from_the_allowlisted_models(dev):
    allowed = grants(dev, function_role(dev, "chat.handler"))
    assert allowed["bedrock:InvokeModelWithResponseStream"] == DEV_MODEL_ARNS
    assert "bedrock:InvokeModel" not in allowed


def test_model_permissions_live_in_their_own_policy(stack):
    # One model policy per function that runs turns: the chat function and the OpenAI door.
    model_policies = [
        p
        for p in stack.of_type(ROLE_POLICY)
        if p.name.endswith(MODEL_POLICY_SUFFIX) or p.name.endswith(DOOR_MODEL_POLICY_SUFFIX)
    ]
    assert len(model_policies) == 2
    for model_policy in model_policies:
        actions = {a for s in statements(model_policy) for a in as_list(s["Action"])}
        # Streaming calls, and CountTokens because the stack's tiers list a countable model
        assert actions == {"bedrock:InvokeModelWithResponseStream", "bedrock:CountTokens"}
    others = [p for p in stack.of_type(ROLE_POLICY) if p not in model_policies]
    assert not any(
        a.startswith("bedrock:")
        for p in others
        for s in statements(p)
        for a in as_list(s["Action"])
    )


def test_count_tokens_is_granted_only_on_the_countable_models_foundation_models(stack):
    chat = grants(stack, function_role(stack, "chat.handler"))
    countable = {
        m
        for tier in stack.config["ai-gateway:tiers"].values()
        for m in tier["models"]
        if "anthropic" in m
    }
    assert set(chat["bedrock:CountTokens"]) == (
        {f"arn:aws:bedrock:*::foundation-model/{m.removeprefix('us.')}" for m in countable}
    )


def test_prod_model_grant_covers_every_tier_and_fallback_model(prod):
    allowed = grants(prod, function_role(prod, "chat.handler"))[
        "bedrock:InvokeModelWithResponseStream"
    ]
    for tier in prod.config["ai-gateway:tiers"].values():
        for model in [*tier["models"], tier.get("fallbackModel")]:
            if model and model.startswith("us."):
                assert any(arn.endswith(f":inference-profile/{model}") for arn in allowed), model
            elif model:
                assert f"arn:aws:bedrock:us-east-1::foundation-model/{model}" in allowed, model


def test_no_guardrail_permission_without_a_configured_guardrail(stack):
    allowed = grants(stack, function_role(stack, "chat.handler"))
    assert "bedrock:ApplyGuardrail" not in allowed


def test_a_tier_guardrail_grants_apply_guardrail_on_that_guardrail_only(dev):
    tiers = dict(dev.config["ai-gateway:tiers"])
    tiers["pro"] = {**tiers["pro"], "guardrail": {"identifier": "gr1abc", "version": "2"}}
    stack = declare_stack("dev", {"tiers": tiers})
    allowed = grants(stack, function_role(stack, "chat.handler"))
    assert allowed["bedrock:ApplyGuardrail"] == {
        "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1abc"
    }


def test_chat_publishes_only_to_the_outbound_namespace(stack):
    allowed = grants(stack, function_role(stack, "chat.handler"))
    api_arn = stack.one("aws:appsync/api:Api").outputs["apiArn"]
    outbound = stack.config["ai-gateway:outboundNamespace"]
    assert allowed["appsync:EventPublish"] == {f"{api_arn}/channelNamespace/{outbound}"}


def test_chat_touches_only_its_tables_parameter_and_stream(stack):
    allowed = grants(stack, function_role(stack, "chat.handler"))
    tables = {
        t.outputs["name"]: t.outputs["arn"] for t in stack.of_type("aws:dynamodb/table:Table")
    }
    usage = tables[stack.outputs["usageTableName"]]
    prepared = tables[stack.outputs["preparedResponsesTableName"]]
    assert allowed["dynamodb:UpdateItem"] == {usage}
    assert allowed["dynamodb:GetItem"] == {usage, prepared}
    assert allowed["dynamodb:BatchGetItem"] == {usage, prepared}
    # the prepared-key index: a keys-only Scan of the prepared-responses table, never of usage
    assert allowed["dynamodb:Scan"] == {prepared}
    assert allowed["ssm:GetParameter"] == {
        stack.named(f"ai-gateway-{stack.stack}-metering-tier-config").outputs["arn"]
    }
    stream = stack.one("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")
    assert allowed["firehose:PutRecord"] == {stream.outputs["arn"]}
    assert {a for a in allowed if a.startswith("dynamodb:")} == {
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:Scan",
        "dynamodb:UpdateItem",
    }


@pytest.mark.parametrize("handler", ["chat.handler", "subscribe.handler"])
def test_functions_write_only_their_own_log_group(stack, handler):
    allowed = grants(stack, function_role(stack, handler))
    group = function(stack, handler).inputs["loggingConfig"]["logGroup"]
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        assert allowed[action]
        assert all(f":log-group:{group}" in arn for arn in allowed[action]), action


def test_subscribe_may_only_log_and_trace(stack):
    allowed = grants(stack, function_role(stack, "subscribe.handler"))
    assert set(allowed) == {"logs:CreateLogStream", "logs:PutLogEvents", *XRAY}


@pytest.mark.parametrize("handler", ["chat.handler", "subscribe.handler"])
def test_function_roles_trust_lambda_in_this_account_only(stack, handler):
    (trust,) = statements(function_role(stack, handler), "assumeRolePolicy")
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_each_function_has_its_own_role(stack):
    chat, subscribe = (function_role(stack, h) for h in ("chat.handler", "subscribe.handler"))
    assert chat.urn != subscribe.urn
