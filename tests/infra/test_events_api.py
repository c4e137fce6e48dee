"""EventsApiComponent: the Event API, its two namespaces, their handlers, logging and WAF."""

from __future__ import annotations

from infra_support import (
    DATA_SOURCE,
    LOG_GROUP,
    NAMESPACE,
    ROLE,
    component,
    function,
    grants,
    statements,
)

from devtools.declare import declare_stack

API = "aws:appsync/api:Api"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
COGNITO = "AMAZON_COGNITO_USER_POOLS"
IAM = "AWS_IAM"


ALIAS = "aws:lambda/alias:Alias"


def _modes(modes):
    return sorted(m["authType"] for m in modes)


def _namespace(stack, name):
    found = [n for n in stack.of_type(NAMESPACE) if n.inputs["name"] == name]
    assert len(found) == 1, f"expected one namespace {name}"
    return found[0]


def _inbound(stack):
    return _namespace(stack, stack.config["ai-gateway:inboundNamespace"])


def _outbound(stack):
    return _namespace(stack, stack.config["ai-gateway:outboundNamespace"])


def _data_source(stack, name):
    return next(d for d in stack.of_type(DATA_SOURCE) if d.inputs["name"] == name)


def test_api_accepts_cognito_users_and_iam_principals(stack):
    config = stack.one(API).inputs["eventConfig"]
    assert _modes(config["authProviders"]) == sorted([COGNITO, IAM])
    cognito = next(p for p in config["authProviders"] if p["authType"] == COGNITO)
    assert cognito["cognitoConfig"]["userPoolId"] == stack.outputs["userPoolId"]
    assert _modes(config["connectionAuthModes"]) == sorted([COGNITO, IAM])


def test_namespaces_without_their_own_modes_fall_back_to_iam_only(stack):
    config = stack.one(API).inputs["eventConfig"]
    assert _modes(config["defaultPublishAuthModes"]) == [IAM]
    assert _modes(config["defaultSubscribeAuthModes"]) == [IAM]


def test_users_publish_to_inbound_but_never_read_it(stack):
    inbound = _inbound(stack).inputs
    assert _modes(inbound["publishAuthModes"]) == [COGNITO]
    assert _modes(inbound["subscribeAuthModes"]) == [IAM]


def test_only_iam_publishes_to_outbound_and_users_subscribe_to_it(stack):
    outbound = _outbound(stack).inputs
    assert _modes(outbound["publishAuthModes"]) == [IAM]
    assert _modes(outbound["subscribeAuthModes"]) == [COGNITO]


def _chat_alias(stack):
    chat = function(stack, "chat.handler").outputs
    return next(a for a in stack.of_type(ALIAS) if a.inputs["functionName"] == chat["name"])


def test_inbound_publish_invokes_chats_published_version_directly_and_asynchronously(stack):
    on_publish = _inbound(stack).inputs["handlerConfigs"]["onPublish"]
    assert on_publish["behavior"] == "DIRECT"
    assert on_publish["integration"]["lambdaConfig"] == {"invokeType": "EVENT"}
    source = _data_source(stack, on_publish["integration"]["dataSourceName"]).inputs
    assert source["type"] == "AWS_LAMBDA"
    # The live alias of the version each deploy publishes (SnapStart restores versions only).
    alias = _chat_alias(stack)
    assert source["lambdaConfig"]["functionArn"] == alias.outputs["arn"]
    assert alias.inputs["functionVersion"] == function(stack, "chat.handler").outputs["version"]
    assert alias.inputs["functionVersion"] != "$LATEST"
    assert "onSubscribe" not in _inbound(stack).inputs["handlerConfigs"]


def test_outbound_subscribe_asks_the_subscribe_function_synchronously(stack):
    on_subscribe = _outbound(stack).inputs["handlerConfigs"]["onSubscribe"]
    assert on_subscribe["behavior"] == "DIRECT"
    assert on_subscribe["integration"]["lambdaConfig"] == {"invokeType": "REQUEST_RESPONSE"}
    source = _data_source(stack, on_subscribe["integration"]["dataSourceName"]).inputs
    expected = function(stack, "subscribe.handler").outputs["arn"]
    assert source["lambdaConfig"]["functionArn"] == expected
    assert "onPublish" not in _outbound(stack).inputs["handlerConfigs"]


def test_data_source_role_may_invoke_only_the_two_handlers(stack):
    role_arns = {d.inputs["serviceRoleArn"] for d in stack.of_type(DATA_SOURCE)}
    assert len(role_arns) == 1
    role = next(r for r in stack.of_type(ROLE) if r.outputs["arn"] in role_arns)
    # chat only through its alias's qualified ARN, which is what AppSync invokes.
    expected = {
        _chat_alias(stack).outputs["arn"],
        function(stack, "subscribe.handler").outputs["arn"],
    }
    assert grants(stack, role) == {"lambda:InvokeFunction": expected}


def test_data_source_role_trusts_appsync_for_this_api_only(stack):
    role_arn = stack.of_type(DATA_SOURCE)[0].inputs["serviceRoleArn"]
    role = next(r for r in stack.of_type(ROLE) if r.outputs["arn"] == role_arn)
    (trust,) = statements(role, "assumeRolePolicy")
    assert trust["Principal"] == {"Service": "appsync.amazonaws.com"}
    api_arn = stack.one(API).outputs["apiArn"]
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"] == [api_arn, f"{api_arn}/*"]
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": api_arn.split(":")[4]}


def test_logs_role_trusts_appsync_apis_of_this_account_and_region_only(stack):
    (role,) = [r for r in stack.of_type(ROLE) if r.name.endswith("-logs-role")]
    (trust,) = statements(role, "assumeRolePolicy")
    assert trust["Principal"] == {"Service": "appsync.amazonaws.com"}
    assert trust["Condition"] == {
        "ArnLike": {"aws:SourceArn": "arn:aws:appsync:us-east-1:123456789012:apis/*"},
        "StringEquals": {"aws:SourceAccount": "123456789012"},
    }


def test_api_logs_through_its_role_to_a_log_group_with_retention(stack):
    api = stack.one(API)
    log_config = api.inputs["eventConfig"]["logConfig"]
    role = next(
        r for r in stack.of_type(ROLE) if r.outputs["arn"] == log_config["cloudwatchLogsRoleArn"]
    )
    group_name = f"/aws/appsync/apis/{api.outputs['apiId']}"
    (group,) = [g for g in stack.of_type(LOG_GROUP) if g.outputs["name"] == group_name]
    assert group.inputs["retentionInDays"] == stack.config["ai-gateway:logRetentionDays"]
    assert set(grants(stack, role)) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert all(
        r.startswith(group.outputs["arn"])
        for resources in grants(stack, role).values()
        for r in resources
    )


def test_prod_puts_a_waf_with_rate_limit_and_common_rules_in_front_of_the_api(prod):
    acl = prod.one(WEB_ACL).inputs
    assert acl["scope"] == "REGIONAL"
    statements_ = [rule["statement"] for rule in acl["rules"]]
    assert any("rateBasedStatement" in s for s in statements_)
    managed = [
        s["managedRuleGroupStatement"] for s in statements_ if "managedRuleGroupStatement" in s
    ]
    assert [(m["vendorName"], m["name"]) for m in managed] == [
        ("AWS", "AWSManagedRulesCommonRuleSet")
    ]
    (association,) = [
        a.inputs
        for a in prod.of_type(WEB_ACL_ASSOCIATION)
        if a.inputs["resourceArn"] == prod.one(API).outputs["apiArn"]
    ]
    assert association["webAclArn"] == prod.one(WEB_ACL).outputs["arn"]


def test_dev_declares_no_waf(dev):
    assert dev.of_type(WEB_ACL) == []
    assert dev.of_type(WEB_ACL_ASSOCIATION) == []


def test_renamed_namespaces_reach_the_api_the_functions_and_the_outputs():
    # GIVEN a stack that renames both namespaces
    stack = declare_stack("dev", {"inboundNamespace": "ask", "outboundNamespace": "answers"})
    # THEN the namespaces, the functions' environment, the publish grant and the outputs agree
    assert sorted(n.inputs["name"] for n in stack.of_type(NAMESPACE)) == ["answers", "ask"]
    chat_env = function(stack, "chat.handler").inputs["environment"]["variables"]
    assert (chat_env["INBOUND_NAMESPACE"], chat_env["OUTBOUND_NAMESPACE"]) == ("ask", "answers")
    subscribe_env = function(stack, "subscribe.handler").inputs["environment"]["variables"]
    assert subscribe_env["OUTBOUND_NAMESPACE"] == "answers"
    assert (stack.outputs["inboundNamespace"], stack.outputs["outboundNamespace"]) == (
        "ask",
        "answers",
    )


def test_events_children_are_parented_to_the_events_component(dev):
    events = component(dev, "EventsApi")
    for resource in [dev.one(API), *dev.of_type(NAMESPACE), *dev.of_type(DATA_SOURCE)]:
        assert resource.parent == events.urn
