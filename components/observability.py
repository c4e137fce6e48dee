"""Operations' view of the gateway: function log groups, a dashboard, alarms and where they go."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import iam
from components.metrics import dashboard_body


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
    #: The OpenAI-compatible door, when the stack serves it: its REST API's name and stage, and
    #: its function's name (its log group belongs to ``OpenAiApiComponent``). Empty: no door.
    openai_api_name: str = ""
    openai_stage_name: str = ""
    openai_function_name: str = ""


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
            dashboard_body=json.dumps(
                dashboard_body(
                    args.region,
                    {**args.function_names, **_door_function(args)},
                    rest_api=(args.openai_api_name, args.openai_stage_name)
                    if args.openai_api_name
                    else None,
                )
            ),
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
            policy=identity.account_id.apply(iam.alarm_topic_key_policy),
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
            alarms.append(self._throttle_alarm(role, function_name, actions))
        if args.openai_api_name:
            alarms += self._create_door_alarms(args, actions)
        return alarms

    def _throttle_alarm(
        self, role: str, function_name: str, actions: list[pulumi.Output[str]]
    ) -> aws.cloudwatch.MetricAlarm:
        """Any throttle of the function in five minutes: its concurrency (or the account's) ran
        out."""
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{role}-throttles",
            alarm_description=f"Lambda throttled {function_name} (concurrency exhausted)",
            namespace="AWS/Lambda",
            metric_name="Throttles",
            dimensions={"FunctionName": function_name},
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

    def _create_door_alarms(
        self, args: ObservabilityArgs, actions: list[pulumi.Output[str]]
    ) -> list[aws.cloudwatch.MetricAlarm]:
        """The OpenAI door's health, read where it shows: the door answers every request itself
        (a failed turn is a 5xx response, not a failed invocation), so its error rate is API
        Gateway's ``5XXError``, whose ``Average`` is the share of requests that failed
        (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html);
        throttling is the door function's ``Throttles``, as for the channel functions."""
        stage = {"ApiName": args.openai_api_name, "Stage": args.openai_stage_name}
        return [
            aws.cloudwatch.MetricAlarm(
                f"{self._name}-openai-5xx-rate",
                alarm_description=f"More than {args.error_rate_percent}% of requests to "
                f"{args.openai_api_name} ended in a 5xx in 2 of the last 3 five-minute periods",
                namespace="AWS/ApiGateway",
                metric_name="5XXError",
                dimensions=stage,
                statistic="Average",
                period=300,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                comparison_operator="GreaterThanThreshold",
                threshold=args.error_rate_percent / 100,
                treat_missing_data="notBreaching",
                alarm_actions=actions,
                ok_actions=actions,
                opts=pulumi.ResourceOptions(parent=self),
            ),
            self._throttle_alarm("openai", args.openai_function_name, actions),
        ]


def _door_function(args: ObservabilityArgs) -> dict[str, str]:
    return {"openai": args.openai_function_name} if args.openai_function_name else {}


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
