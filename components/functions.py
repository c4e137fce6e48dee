"""The gateway's Lambda functions and their least-privilege roles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypedDict

import pulumi
import pulumi_aws as aws
from gateway.environment import FunctionEnvironment
from gateway.tiers import TierConfig

from components import iam
from components.events_api import EventsEndpoint
from components.function_code import (
    CHAT_ENVIRONMENT,
    LAMBDA_ARCHITECTURE,
    LAMBDA_RUNTIME,
    SUBSCRIBE_ENVIRONMENT,
    environment_variables,
    powertools_layer_parameter,
)
from components.naming import renamed, stack_prefix

#: The chat function's alias: the published version the Event API invokes.
CHAT_ALIAS = "live"


@dataclass(frozen=True)
class TurnResources:
    """What a function that runs turns needs, whichever door it serves: the stack's scalar
    settings, the usage and prepared-responses tables, the tier parameter, the analytics stream,
    and what it may call on Bedrock in ``region`` (the chat function and the OpenAI door share
    one)."""

    #: Scalar settings (namespaces, limits, flush interval, ...); resource names are filled in.
    environment: FunctionEnvironment
    usage_table: aws.dynamodb.Table
    prepared_responses_table: aws.dynamodb.Table
    tier_config_parameter: aws.ssm.Parameter
    analytics_stream: aws.kinesis.FirehoseDeliveryStream
    #: Every model any tier may call (``TierConfig.all_models()``).
    model_ids: Sequence[str]
    #: Ids of the Bedrock guardrails any tier applies.
    guardrail_ids: Sequence[str] = ()
    #: Models whose tokens the functions may count with Bedrock's CountTokens.
    countable_model_ids: Sequence[str] = ()
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        if not self.model_ids:
            raise ValueError("TurnResources.model_ids: at least one model is required")

    def statements(self) -> pulumi.Output[list[dict[str, object]]]:
        """The IAM statements running a turn needs (:func:`turn_statements`)."""
        return turn_statements(
            self.usage_table,
            self.prepared_responses_table,
            self.tier_config_parameter,
            self.analytics_stream,
        )

    def variables(
        self, names: Sequence[str], service: str, **fields: pulumi.Input[str]
    ) -> pulumi.Output[dict[str, str]]:
        """The function's environment: :attr:`environment` with the resources' names (and any
        other ``FunctionEnvironment`` ``fields`` known only at deploy time) filled in, the
        variables in ``names``."""
        resources = pulumi.Output.all(
            usage=self.usage_table.name,
            prepared=self.prepared_responses_table.name,
            parameter=self.tier_config_parameter.name,
            stream=self.analytics_stream.name,
            **fields,
        )
        return resources.apply(
            lambda v: environment_variables(
                replace(
                    self.environment,
                    usage_table=v["usage"],
                    prepared_responses_table=v["prepared"],
                    tier_config_parameter=v["parameter"],
                    analytics_stream=v["stream"],
                    **{name: v[name] for name in fields},
                ),
                names,
                service,
            )
        )


@dataclass
class GatewayFunctionsArgs:
    """Inputs of :class:`GatewayFunctionsComponent`."""

    chat_function_name: str
    subscribe_function_name: str
    chat_log_group: aws.cloudwatch.LogGroup
    subscribe_log_group: aws.cloudwatch.LogGroup
    code: pulumi.Archive
    powertools_version: str
    events: EventsEndpoint
    #: What running turns needs: settings, tables, tier parameter, stream and model access.
    turn: TurnResources
    chat_memory_mb: int = 1024
    #: Lambda SnapStart on the chat function: each deploy publishes a version, Lambda snapshots
    #: it after init and restores new execution environments from the snapshot.
    #: https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html
    chat_snap_start: bool = True
    #: Reserved concurrency of the chat function: the most turns that run at once, and capacity
    #: no other function in the account can take. ``None`` reserves nothing (Lambda's -1).
    #: https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
    chat_reserved_concurrency: int | None = None
    chat_timeout_seconds: int = 300


def model_access_document(
    model_ids: Sequence[str],
    guardrail_ids: Sequence[str],
    region: str,
    account: str,
    countable_model_ids: Sequence[str] = (),
) -> str:
    """What a function running turns may call on Bedrock: the allowlisted models (streamed),
    CountTokens on the models that support it, and the tiers' guardrails, nothing else."""
    statements = [
        iam.allow(
            "InvokeAllowlistedModels",
            ["bedrock:InvokeModelWithResponseStream"],
            iam.bedrock_model_arns(model_ids, region, account),
        )
    ]
    if countable_model_ids:
        # CountTokens takes the foundation-model id, so only foundation-model ARNs.
        # https://docs.aws.amazon.com/bedrock/latest/userguide/count-tokens.html
        statements.append(
            iam.allow(
                "CountTokensOfCountableModels",
                ["bedrock:CountTokens"],
                iam.foundation_model_arns(countable_model_ids),
            )
        )
    if guardrail_ids:
        statements.append(
            iam.allow(
                "ApplyTierGuardrails",
                ["bedrock:ApplyGuardrail"],
                iam.guardrail_arns(guardrail_ids, region, account),
            )
        )
    return iam.document(*statements)


class ModelAccessArguments(TypedDict):
    model_ids: Sequence[str]
    countable_model_ids: Sequence[str]
    guardrail_ids: Sequence[str]


def model_access(tiers: TierConfig) -> ModelAccessArguments:
    """The Bedrock access of a function running the tiers' turns: every model a tier may call,
    those CountTokens can count, and the tiers' guardrails (arguments of both functions)."""
    return {
        "model_ids": tiers.all_models(),
        "countable_model_ids": sorted(tiers.countable),
        "guardrail_ids": sorted(
            {t.guardrail.identifier for t in tiers.tiers.values() if t.guardrail}
        ),
    }


def model_access_policy(
    name: str,
    role: aws.iam.Role,
    account: pulumi.Output[str],
    access: TurnResources,
    opts: pulumi.ResourceOptions,
) -> aws.iam.RolePolicy:
    """The role policy of :func:`model_access_document`, on its own (a model change updates
    this policy and nothing else)."""
    return aws.iam.RolePolicy(
        name,
        role=role.id,
        policy=account.apply(
            lambda a: model_access_document(
                access.model_ids, access.guardrail_ids, access.region, a, access.countable_model_ids
            )
        ),
        opts=opts,
    )


def turn_statements(
    usage_table: aws.dynamodb.Table,
    prepared_responses_table: aws.dynamodb.Table,
    tier_config_parameter: aws.ssm.Parameter,
    analytics_stream: aws.kinesis.FirehoseDeliveryStream,
) -> pulumi.Output[list[dict[str, object]]]:
    """What running a turn touches whichever door it came through: metering, prepared
    responses, the tier document and the analytics stream."""
    resources = pulumi.Output.all(
        usage=usage_table.arn,
        prepared=prepared_responses_table.arn,
        parameter=tier_config_parameter.arn,
        stream=analytics_stream.arn,
    )
    return resources.apply(
        lambda r: [
            iam.allow(
                "MeterUsage",
                ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"],
                [r["usage"]],
            ),
            # Scan: the function keeps an index of the prepared keys (keys only, refreshed
            # in the background) so a first message skips the lookup unless its key is there.
            iam.allow(
                "ReadPreparedResponses",
                ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Scan"],
                [r["prepared"]],
            ),
            iam.allow("ReadTierConfig", ["ssm:GetParameter"], [r["parameter"]]),
            iam.allow("RecordTurns", ["firehose:PutRecord"], [r["stream"]]),
        ]
    )


class GatewayFunctionsComponent(pulumi.ComponentResource):
    """``chat`` (the inbound onPublish handler, invoked asynchronously) and ``subscribe`` (the
    outbound onSubscribe handler), Python 3.13 on arm64 with the managed Powertools layer.

    Every deploy publishes a version of ``chat`` (with SnapStart, the version Lambda snapshots)
    and points its ``live`` alias at it: whatever invokes ``chat`` invokes ``chat_alias``.

    The chat role may call only the allowlisted models, publish only to the outbound namespace,
    and touch only its tables, tier parameter, analytics stream and log group. Its model
    permissions live in their own policy, so a model allowlist change updates that one resource.
    """

    chat_function: aws.lambda_.Function
    #: ``live``: the published version every invoker calls (SnapStart snapshots versions only).
    chat_alias: aws.lambda_.Alias
    subscribe_function: aws.lambda_.Function
    chat_role: aws.iam.Role
    subscribe_role: aws.iam.Role
    model_access_policy: aws.iam.RolePolicy
    #: The managed Powertools layer's ARN, for any other function that runs turns.
    powertools_layer: pulumi.Output[str]

    def __init__(
        self, name: str, args: GatewayFunctionsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:index:GatewayFunctions", name, None, opts)
        self._name = name
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke_opts).account_id
        # A public String parameter; `insecure_value` keeps the layer ARN readable in diffs.
        self._layer = aws.ssm.get_parameter_output(
            name=powertools_layer_parameter(args.powertools_version), opts=invoke_opts
        ).insecure_value
        self.powertools_layer = self._layer

        self.chat_role = self._create_role("chat")
        self.model_access_policy = self._create_model_access_policy(args)
        chat_policy = self._create_chat_runtime_policy(args)
        self.chat_function = self._create_chat_function(args, [chat_policy])

        self.subscribe_role = self._create_role("subscribe")
        subscribe_policy = self._create_runtime_policy(
            "subscribe", self.subscribe_role, args.subscribe_log_group, extra=[]
        )
        self.subscribe_function = self._create_function(
            "subscribe",
            function_name=args.subscribe_function_name,
            role=self.subscribe_role,
            log_group=args.subscribe_log_group,
            code=args.code,
            environment=environment_variables(
                args.turn.environment, SUBSCRIBE_ENVIRONMENT, "subscribe"
            ),
            memory_mb=256,
            timeout_seconds=10,
            depends_on=[subscribe_policy],
        )
        self.register_outputs(
            {
                "chatFunctionName": self.chat_function.name,
                "chatFunctionArn": self.chat_function.arn,
                "chatAliasArn": self.chat_alias.arn,
                "subscribeFunctionName": self.subscribe_function.name,
                "subscribeFunctionArn": self.subscribe_function.arn,
            }
        )

    def _child(self, **extra: object) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **extra)  # type: ignore[arg-type]

    def _create_role(self, function: str) -> aws.iam.Role:
        return aws.iam.Role(
            f"{stack_prefix(self._name)}-{function}-role",
            description=f"The gateway's {function} function",
            # Lambda assumes an execution role for the account's own functions; aws:SourceAccount
            # is the global key AWS sets on such service-principal requests, as in AWS's own
            # Lambda trust policy (aws/agent-toolkit-for-aws, lambda-trust-policy.json):
            # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-sourceaccount
            assume_role_policy=self._account.apply(
                lambda account: iam.trust("lambda.amazonaws.com", source_account=account)
            ),
            opts=renamed(f"{self._name}-{function}-role", parent=self),
        )

    def _create_model_access_policy(self, args: GatewayFunctionsArgs) -> aws.iam.RolePolicy:
        return model_access_policy(
            f"{self._name}-chat-model-access",
            self.chat_role,
            self._account,
            args.turn,
            self._child(),
        )

    def _create_chat_runtime_policy(self, args: GatewayFunctionsArgs) -> aws.iam.RolePolicy:
        publish = args.events.outbound_namespace_arn.apply(
            lambda arn: [iam.allow("PublishReplies", ["appsync:EventPublish"], [arn])]
        )
        statements = pulumi.Output.all(publish, args.turn.statements()).apply(
            lambda parts: [*parts[0], *parts[1]]
        )
        return self._create_runtime_policy(
            "chat", self.chat_role, args.chat_log_group, extra=statements
        )

    def _create_runtime_policy(
        self,
        function: str,
        role: aws.iam.Role,
        log_group: aws.cloudwatch.LogGroup,
        extra: pulumi.Input[list[dict[str, object]]],
    ) -> aws.iam.RolePolicy:
        """Logs to the function's own group and traces, plus ``extra`` statements."""
        policy = pulumi.Output.all(log_group.arn, extra).apply(
            lambda v: iam.document(
                *v[1],
                *iam.log_and_trace(v[0]),
            )
        )
        return aws.iam.RolePolicy(
            f"{self._name}-{function}-runtime", role=role.id, policy=policy, opts=self._child()
        )

    def _create_chat_function(
        self, args: GatewayFunctionsArgs, policies: list[pulumi.Resource]
    ) -> aws.lambda_.Function:
        environment = args.turn.variables(
            CHAT_ENVIRONMENT,
            "chat",
            events_http_endpoint=args.events.http_endpoint,
            events_origin_secret=args.events.origin_secret or "",
        )
        function = self._create_function(
            "chat",
            function_name=args.chat_function_name,
            role=self.chat_role,
            log_group=args.chat_log_group,
            code=args.code,
            environment=environment,
            memory_mb=args.chat_memory_mb,
            timeout_seconds=args.chat_timeout_seconds,
            reserved_concurrency=args.chat_reserved_concurrency,
            depends_on=[*policies, self.model_access_policy],
            publish=True,
            snap_start=args.chat_snap_start,
        )
        # SnapStart applies to published versions only, never $LATEST, so invokers call an
        # alias of the version each deploy publishes.
        # https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html
        self.chat_alias = aws.lambda_.Alias(
            f"{self._name}-chat-live",
            name=CHAT_ALIAS,
            description="The chat function's published version the Event API invokes",
            function_name=function.name,
            function_version=function.version,
            opts=self._child(),
        )
        # AppSync invokes chat asynchronously. A retried turn would publish and charge twice, so
        # a failed invocation is not retried; its usage reservation expires by itself. The
        # setting is per function, version or alias, so it is set on the alias AppSync invokes.
        # https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionEventInvokeConfig.html
        aws.lambda_.FunctionEventInvokeConfig(
            f"{self._name}-chat-async",
            function_name=function.name,
            qualifier=self.chat_alias.name,
            maximum_retry_attempts=0,
            maximum_event_age_in_seconds=120,
            opts=self._child(),
        )
        return function

    def _create_function(
        self,
        function: str,
        *,
        function_name: str,
        role: aws.iam.Role,
        log_group: aws.cloudwatch.LogGroup,
        code: pulumi.Archive,
        environment: pulumi.Input[dict[str, str]],
        memory_mb: int,
        timeout_seconds: int,
        depends_on: list[pulumi.Resource],
        reserved_concurrency: int | None = None,
        publish: bool = False,
        snap_start: bool = False,
    ) -> aws.lambda_.Function:
        return aws.lambda_.Function(
            f"{self._name}-{function}",
            name=function_name,
            description=f"ai-gateway {function} handler",
            role=role.arn,
            runtime=LAMBDA_RUNTIME,
            architectures=[LAMBDA_ARCHITECTURE],
            handler=f"{function}.handler",
            code=code,
            layers=[self._layer],
            memory_size=memory_mb,
            timeout=timeout_seconds,
            # -1 is Lambda's "no reservation" (the provider's default).
            reserved_concurrent_executions=-1
            if reserved_concurrency is None
            else reserved_concurrency,
            environment={"variables": environment},
            publish=publish,
            # Python 3.12 and later managed runtimes support SnapStart; it takes effect on
            # published versions. https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html
            snap_start={"apply_on": "PublishedVersions"} if snap_start else None,
            tracing_config={"mode": "Active"},
            logging_config={
                "log_format": "JSON",
                "log_group": log_group.name,
                "application_log_level": "INFO",
                "system_log_level": "WARN",
            },
            opts=self._child(depends_on=[log_group, *depends_on]),
        )
