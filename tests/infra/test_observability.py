"""ObservabilityComponent: log retention, dashboard, alarms and the alarm topic."""

from __future__ import annotations

import json

import pytest
from infra_support import LOG_GROUP, component, function

from components.metrics import METRICS_NAMESPACE, Metric
from devtools.declare import declare_stack

DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
KEY = "aws:kms/key:Key"
HANDLERS = ["chat.handler", "subscribe.handler"]


def _dashboard_text(stack) -> str:
    return stack.one(DASHBOARD).inputs["dashboardBody"]


def _alarms_on(stack, function_name):
    found = []
    for alarm in stack.of_type(ALARM):
        inputs = alarm.inputs
        dimensions = [inputs.get("dimensions") or {}] + [
            (q.get("metric") or {}).get("dimensions") or {} for q in inputs.get("metricQueries", [])
        ]
        if any(d.get("FunctionName") == function_name for d in dimensions):
            found.append(alarm)
    return found


def test_every_log_group_has_the_configured_retention(stack):
    retention = stack.config["ai-gateway:logRetentionDays"]
    groups = stack.of_type(LOG_GROUP)
    assert groups
    assert {g.name: g.inputs.get("retentionInDays") for g in groups} == {
        g.name: retention for g in groups
    }


@pytest.mark.parametrize("handler", HANDLERS)
def test_each_function_has_a_log_group_named_for_it(stack, handler):
    name = function(stack, handler).inputs["name"]
    (group,) = [g for g in stack.of_type(LOG_GROUP) if g.outputs["name"] == f"/aws/lambda/{name}"]
    assert group.parent == component(stack, "Observability").urn


def test_dashboard_charts_every_gateway_metric(stack):
    body = json.loads(_dashboard_text(stack))
    assert body["widgets"]
    text = _dashboard_text(stack)
    for metric in (
        Metric.INPUT_TOKENS,
        Metric.OUTPUT_TOKENS,
        Metric.TURN_LATENCY,
        Metric.FIRST_TOKEN_LATENCY,
        Metric.CACHE_HITS,
        Metric.ERRORS,
        Metric.MODEL_THROTTLES,
        Metric.SPECULATIVE_CALLS_CANCELLED,
        Metric.SPECULATIVE_INPUT_TOKENS,
        Metric.METERING_OVERRUN_TOKENS,
    ):
        assert f'MetricName=\\"{metric}\\"' in text, metric
    assert f'Namespace=\\"{METRICS_NAMESPACE}\\"' in text


def test_dashboard_names_no_model_so_allowlist_changes_leave_it_alone(prod):
    text = _dashboard_text(prod)
    for tier in prod.config["ai-gateway:tiers"].values():
        for model in tier["models"]:
            assert model not in text


def test_functions_emit_metrics_into_the_dashboard_namespace(stack):
    for handler in HANDLERS:
        variables = function(stack, handler).inputs["environment"]["variables"]
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE


@pytest.mark.parametrize("handler", HANDLERS)
def test_each_function_has_error_rate_and_throttle_alarms(stack, handler):
    alarms = _alarms_on(stack, function(stack, handler).inputs["name"])
    throttles = [a for a in alarms if a.inputs.get("metricName") == "Throttles"]
    error_rate = [a for a in alarms if a.inputs.get("metricQueries")]
    assert len(throttles) == 1 and len(error_rate) == 1
    expression = next(q for q in error_rate[0].inputs["metricQueries"] if q.get("expression"))
    assert "errors" in expression["expression"] and "invocations" in expression["expression"]


def test_prod_alarms_notify_an_encrypted_topic_with_the_on_call_email(prod):
    topic = prod.one(TOPIC)
    assert topic.inputs["kmsMasterKeyId"] == prod.one(KEY).outputs["arn"]
    assert prod.one(KEY).inputs["enableKeyRotation"] is True
    subscription = prod.one(SUBSCRIPTION).inputs
    assert subscription["protocol"] == "email"
    assert subscription["endpoint"] == prod.config["ai-gateway:alarmEmail"]
    assert subscription["topic"] == topic.outputs["arn"]
    for alarm in prod.of_type(ALARM):
        assert alarm.inputs["alarmActions"] == [topic.outputs["arn"]], alarm.name


def test_alarm_key_lets_cloudwatch_publish_and_grants_no_wildcard_action(prod):
    policy = json.loads(prod.one(KEY).inputs["policy"])
    principals = [s["Principal"] for s in policy["Statement"]]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals
    assert not any("*" in a for s in policy["Statement"] for a in s["Action"])


def test_without_an_alarm_email_there_is_no_topic_and_alarms_notify_nobody(dev):
    assert dev.of_type(TOPIC) == []
    assert dev.of_type(KEY) == []
    assert dev.of_type(ALARM)
    assert all(not a.inputs.get("alarmActions") for a in dev.of_type(ALARM))


def test_an_alarm_email_on_dev_adds_the_topic_by_config_alone():
    stack = declare_stack("dev", {"alarmEmail": "dev-alerts@example.com"})
    assert stack.one(SUBSCRIPTION).inputs["endpoint"] == "dev-alerts@example.com"


def test_dashboard_name_is_exported(stack):
    assert stack.outputs["dashboardName"] == stack.one(DASHBOARD).inputs["dashboardName"]


def _door_alarms(stack):
    return {
        a.name.rsplit("-openai-", 1)[1]: a.inputs
        for a in stack.of_type(ALARM)
        if "-openai-" in a.name
    }


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_the_openai_door_has_a_5xx_rate_alarm_on_its_stage_and_a_throttle_alarm(
    request, stack_name
):
    stack = request.getfixturevalue(stack_name)
    api = stack.one("aws:apigateway/restApi:RestApi").inputs["name"]
    stage = stack.one("aws:apigateway/stage:Stage").inputs["stageName"]
    (door,) = [
        f
        for f in stack.of_type("aws:lambda/function:Function")
        if f.inputs["handler"] == "openai_door.sh"
    ]
    alarms = _door_alarms(stack)
    assert set(alarms) == {"5xx-rate", "throttles"}
    rate = alarms["5xx-rate"]
    assert (rate["namespace"], rate["metricName"], rate["statistic"]) == (
        "AWS/ApiGateway",
        "5XXError",
        "Average",  # the share of requests, so the threshold is a fraction
    )
    assert rate["dimensions"] == {"ApiName": api, "Stage": stage}
    assert rate["threshold"] == pytest.approx(0.05)
    assert alarms["throttles"]["dimensions"] == {"FunctionName": door.inputs["name"]}
    if stack_name == "prod":
        assert rate["alarmActions"] and rate["alarmActions"] == alarms["throttles"]["alarmActions"]
    body = json.loads(_dashboard_text(stack))
    (widget,) = [w for w in body["widgets"] if w["properties"]["title"].startswith("OpenAI door")]
    assert {m[1] for m in widget["properties"]["metrics"]} == {"Count", "4XXError", "5XXError"}
    assert all(m[3:6] == [api, "Stage", stage] for m in widget["properties"]["metrics"])


def test_without_the_door_there_is_no_door_alarm_or_widget():
    stack = declare_stack("dev", {"openAi": False})
    assert _door_alarms(stack) == {}
    assert "OpenAI door" not in _dashboard_text(stack)
