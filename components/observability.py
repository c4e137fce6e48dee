"""Operations' view of the gateway: function log groups, a dashboard, alarms and where they go."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

#: CloudWatch namespace of the functions' EMF metrics (``POWERTOOLS_METRICS_NAMESPACE``).
METRICS_NAMESPACE = "AiGateway"


class Metric:
    """Names of the EMF metrics the chat function emits (Powertools Metrics)."""

    INPUT_TOKENS = "InputTokens"  # dimension modelId
    OUTPUT_TOKENS = "OutputTokens"  # dimension modelId
    TURN_LATENCY = "TurnLatency"  # milliseconds
    FIRST_TOKEN_LATENCY = "FirstTokenLatency"  # milliseconds
    CACHE_HITS = "CacheHits"
    ERRORS = "Errors"  # dimension code
    MODEL_THROTTLES = "ModelThrottles"  # dimension modelId
    # Faults a turn survived (it still ended with a terminal event).
    USAGE_STORE_FAILURES = "UsageStoreFailures"
    ANALYTICS_FAILURES = "AnalyticsFailures"
    PUBLISH_FAILURES = "PublishFailures"


@dataclass
class ObservabilityArgs:
    """Inputs of :class:`ObservabilityComponent`."""

    #: Function role ("chat", "subscribe") -> its explicit Lambda function name.
    function_names: Mapping[str, str]
    dashboard_name: str
    region: str
    log_retention_days: int = 30
    #: Where alarms are sent; no topic is declared without one.
    alarm_email: str = ""
    #: Percentage of a function's invocations that may fail before its alarm fires.
    error_rate_percent: float = 5.0


class ObservabilityComponent(pulumi.ComponentResource):
    """A log group with retention per function (``/aws/lambda/<name>``, declared before the
    function so Lambda never creates one that keeps logs forever), a dashboard on the gateway's
    metrics, alarms on function error rate and throttling, and - when an alarm e-mail is set - a
    KMS-encrypted SNS topic the alarms notify."""

    log_groups: dict[str, aws.cloudwatch.LogGroup]
    dashboard: aws.cloudwatch.Dashboard
    alarms: list[aws.cloudwatch.MetricAlarm]
    alarm_topic: aws.sns.Topic | None

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:index:Observability", name, None, opts)
        self._name = name
        self.log_groups = {
            role: aws.cloudwatch.LogGroup(
                f"{name}-{role}-logs",
                name=f"/aws/lambda/{function_name}",
                retention_in_days=args.log_retention_days,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for role, function_name in sorted(args.function_names.items())
        }
        self.alarm_topic = self._create_alarm_topic(args.alarm_email) if args.alarm_email else None
        self.alarms = self._create_alarms(args)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.dashboard_name,
            dashboard_body=json.dumps(dashboard_body(args.region, args.function_names)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "dashboardName": self.dashboard.dashboard_name,
                "alarmTopicArn": self.alarm_topic.arn if self.alarm_topic else None,
            }
        )

    def _create_alarm_topic(self, email: str) -> aws.sns.Topic:
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        key = aws.kms.Key(
            f"{self._name}-alarm-key",
            description="Encrypts the ai-gateway alarm topic",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=identity.account_id.apply(_alarm_key_policy),
            opts=pulumi.ResourceOptions(parent=self),
        )
        topic = aws.sns.Topic(
            f"{self._name}-alarms",
            kms_master_key_id=key.arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.sns.TopicSubscription(
            f"{self._name}-alarm-email",
            topic=topic.arn,
            protocol="email",
            endpoint=email,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return topic

    def _create_alarms(self, args: ObservabilityArgs) -> list[aws.cloudwatch.MetricAlarm]:
        actions = [self.alarm_topic.arn] if self.alarm_topic else []
        alarms = []
        for role, function_name in sorted(args.function_names.items()):
            dimensions = {"FunctionName": function_name}
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    f"{self._name}-{role}-error-rate",
                    alarm_description=f"More than {args.error_rate_percent}% of {function_name} "
                    "invocations failed in 2 of the last 3 five-minute periods",
                    comparison_operator="GreaterThanThreshold",
                    threshold=args.error_rate_percent,
                    evaluation_periods=3,
                    datapoints_to_alarm=2,
                    treat_missing_data="notBreaching",
                    metric_queries=[
                        _lambda_query("errors", "Errors", dimensions),
                        _lambda_query("invocations", "Invocations", dimensions),
                        {
                            "id": "error_rate",
                            "expression": "IF(invocations > 0, 100 * errors / invocations, 0)",
                            "label": "Error rate (%)",
                            "return_data": True,
                        },
                    ],
                    alarm_actions=actions,
                    ok_actions=actions,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    f"{self._name}-{role}-throttles",
                    alarm_description=f"Lambda throttled {function_name} (concurrency exhausted)",
                    namespace="AWS/Lambda",
                    metric_name="Throttles",
                    dimensions=dimensions,
                    statistic="Sum",
                    period=300,
                    evaluation_periods=1,
                    comparison_operator="GreaterThanThreshold",
                    threshold=0,
                    treat_missing_data="notBreaching",
                    alarm_actions=actions,
                    ok_actions=actions,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        return alarms


def _lambda_query(query_id: str, metric: str, dimensions: dict[str, str]) -> dict[str, object]:
    return {
        "id": query_id,
        "metric": {
            "namespace": "AWS/Lambda",
            "metric_name": metric,
            "dimensions": dimensions,
            "period": 300,
            "stat": "Sum",
        },
        "return_data": False,
    }


def _search(metric: str, stat: str, label: str, query_id: str) -> list[dict[str, object]]:
    # SEARCH matches the metric whatever its dimensions (modelId, code, service), so the dashboard
    # never has to list models and is untouched by a tier's allowlist change.
    expression = (
        f"SEARCH('Namespace=\"{METRICS_NAMESPACE}\" MetricName=\"{metric}\"', '{stat}', 300)"
    )
    return [{"expression": expression, "label": label, "id": query_id}]


def _widget(title: str, metrics: list, x: int, y: int, region: str, **props: object) -> dict:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": region,
            "metrics": metrics,
            "period": 300,
            **props,
        },
    }


def dashboard_body(region: str, function_names: Mapping[str, str]) -> dict[str, object]:
    """The CloudWatch dashboard: tokens by model, latency, first-token latency, errors by code,
    cache hits, model throttles and the functions' own invocations, errors and throttles."""
    lambda_metrics = [
        ["AWS/Lambda", metric, "FunctionName", name, {"stat": "Sum", "label": f"{role} {metric}"}]
        for role, name in sorted(function_names.items())
        for metric in ("Invocations", "Errors", "Throttles")
    ]
    widgets = [
        _widget(
            "Tokens by model",
            _search(Metric.INPUT_TOKENS, "Sum", "input", "input")
            + _search(Metric.OUTPUT_TOKENS, "Sum", "output", "output"),
            0,
            0,
            region,
            view="timeSeries",
            stacked=True,
        ),
        _widget(
            "Turn latency (ms)",
            _search(Metric.TURN_LATENCY, "p50", "p50", "p50")
            + _search(Metric.TURN_LATENCY, "p90", "p90", "p90")
            + _search(Metric.TURN_LATENCY, "p99", "p99", "p99"),
            12,
            0,
            region,
            view="timeSeries",
        ),
        _widget(
            "First-token latency (ms)",
            _search(Metric.FIRST_TOKEN_LATENCY, "p50", "p50", "p50")
            + _search(Metric.FIRST_TOKEN_LATENCY, "p90", "p90", "p90"),
            0,
            6,
            region,
            view="timeSeries",
        ),
        _widget(
            "Errors by code",
            _search(Metric.ERRORS, "Sum", "errors", "errors"),
            12,
            6,
            region,
            view="timeSeries",
            stacked=True,
        ),
        _widget(
            "Prepared-response cache hits",
            _search(Metric.CACHE_HITS, "Sum", "hits", "hits"),
            0,
            12,
            region,
            view="timeSeries",
        ),
        _widget(
            "Model throttles",
            _search(Metric.MODEL_THROTTLES, "Sum", "throttles", "throttles"),
            12,
            12,
            region,
            view="timeSeries",
        ),
        _widget(
            "Survived faults",
            _search(Metric.USAGE_STORE_FAILURES, "Sum", "usage store", "usage")
            + _search(Metric.ANALYTICS_FAILURES, "Sum", "analytics", "analytics")
            + _search(Metric.PUBLISH_FAILURES, "Sum", "publish", "publish"),
            0,
            18,
            region,
            view="timeSeries",
            stacked=True,
        ),
        _widget("Functions", lambda_metrics, 12, 18, region, view="timeSeries"),
    ]
    return {"widgets": widgets}


def _alarm_key_policy(account: str) -> str:
    root = f"arn:aws:iam::{account}:root"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministersKey",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": [
                        "kms:CancelKeyDeletion",
                        "kms:CreateAlias",
                        "kms:CreateGrant",
                        "kms:Decrypt",
                        "kms:DeleteAlias",
                        "kms:DescribeKey",
                        "kms:DisableKey",
                        "kms:DisableKeyRotation",
                        "kms:EnableKey",
                        "kms:EnableKeyRotation",
                        "kms:Encrypt",
                        "kms:GenerateDataKey",
                        "kms:GetKeyPolicy",
                        "kms:GetKeyRotationStatus",
                        "kms:ListAliases",
                        "kms:ListGrants",
                        "kms:ListResourceTags",
                        "kms:PutKeyPolicy",
                        "kms:RetireGrant",
                        "kms:RevokeGrant",
                        "kms:ScheduleKeyDeletion",
                        "kms:TagResource",
                        "kms:UntagResource",
                        "kms:UpdateAlias",
                        "kms:UpdateKeyDescription",
                    ],
                    # In a key policy "*" means this key and nothing else.
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": "*",
                },
            ],
        }
    )
