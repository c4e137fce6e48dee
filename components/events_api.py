"""The real-time front door: an AppSync Event API with a private channel per user."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import pulumi
import pulumi_aws as aws

from components import iam
from components.naming import renamed, stack_prefix
from components.waf import chat_body_limit, create_origin_secret, create_web_acl

COGNITO = "AMAZON_COGNITO_USER_POOLS"
IAM = "AWS_IAM"


@dataclass(frozen=True)
class EventsEndpoint:
    """What the handlers need to know about the API: where to publish and what they may touch."""

    api_id: pulumi.Output[str]
    api_arn: pulumi.Output[str]
    #: ``https://<host>/event`` - the HTTP publish endpoint.
    http_endpoint: pulumi.Output[str]
    #: ``wss://<host>/event/realtime`` - the WebSocket endpoint clients subscribe on.
    realtime_endpoint: pulumi.Output[str]
    #: The outbound namespace's ARN, the only thing the chat function may publish to.
    outbound_namespace_arn: pulumi.Output[str]
    #: With a WAF: the secret the functions send so its user rules skip them (``components.waf``).
    origin_secret: pulumi.Output[str] | None = None


class ChannelHandlers(Protocol):
    """The functions behind the namespaces (``GatewayFunctionsComponent`` provides them)."""

    chat_function: aws.lambda_.Function
    #: The published version of ``chat`` the inbound namespace invokes (SnapStart restores
    #: snapshots of published versions only).
    chat_alias: aws.lambda_.Alias
    subscribe_function: aws.lambda_.Function


@dataclass
class EventsApiArgs:
    """Inputs of :class:`EventsApiComponent`."""

    api_name: str
    user_pool_id: pulumi.Input[str]
    region: str
    inbound_namespace: str
    outbound_namespace: str
    #: Builds the handlers once the API exists (they need its endpoint and ARN; the API's
    #: data sources need their ARNs, so they are made in between).
    handlers: Callable[[EventsEndpoint], ChannelHandlers]
    log_retention_days: int = 30
    log_level: str = "ERROR"
    waf: bool = True
    #: User requests per client IP per 5 minutes before the WAF blocks it (the gateway's own
    #: publishes, marked with the stack's origin secret, are not counted).
    waf_rate_limit: int = 2000
    #: Largest user request body the WAF lets through; default sized to a 16,000-character turn.
    waf_max_body_bytes: int = chat_body_limit(16_000)

    def __post_init__(self) -> None:
        if self.inbound_namespace == self.outbound_namespace:
            raise ValueError("EventsApiArgs: inbound and outbound namespaces must differ")


class EventsApiComponent(pulumi.ComponentResource):
    """An Event API with Cognito auth for users and IAM auth for the gateway's functions.

    Users publish chat turns to ``/<inbound>/<sub>`` (Cognito) and read answers on
    ``/<outbound>/<sub>`` (Cognito). Only IAM principals - the chat function - may publish to the
    outbound namespace or read the inbound one. ``onPublish`` of the inbound namespace invokes the
    chat function asynchronously (EVENT); ``onSubscribe`` of the outbound namespace invokes the
    subscribe function synchronously, which refuses a channel that is not the caller's own.
    """

    api: aws.appsync.Api
    endpoint: EventsEndpoint
    handlers: ChannelHandlers
    inbound: aws.appsync.ChannelNamespace
    outbound: aws.appsync.ChannelNamespace
    web_acl: aws.wafv2.WebAcl | None
    origin_secret: aws.ssm.Parameter | None

    def __init__(
        self, name: str, args: EventsApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:index:EventsApi", name, None, opts)
        self._name = name
        self.api = self._create_api(args)
        self.endpoint = self._endpoint(args)
        self.web_acl = None
        self.origin_secret = None
        if args.waf:
            self.origin_secret = create_origin_secret(name, parent=self)
            self.endpoint = replace(self.endpoint, origin_secret=self.origin_secret.value)
            self.web_acl = create_web_acl(
                name,
                protected_arn=self.api.api_arn,
                origin_secret=self.origin_secret.value,
                rate_limit=args.waf_rate_limit,
                max_body_bytes=args.waf_max_body_bytes,
                parent=self,
            )
        self.handlers = args.handlers(self.endpoint)
        chat_source, subscribe_source = self._create_data_sources()
        self.inbound = aws.appsync.ChannelNamespace(
            f"{name}-inbound",
            api_id=self.api.api_id,
            name=args.inbound_namespace,
            publish_auth_modes=[{"auth_type": COGNITO}],
            subscribe_auth_modes=[{"auth_type": IAM}],  # users never read the inbound channel
            handler_configs={"on_publish": _direct(chat_source, "EVENT")},
            opts=self._child(),
        )
        self.outbound = aws.appsync.ChannelNamespace(
            f"{name}-outbound",
            api_id=self.api.api_id,
            name=args.outbound_namespace,
            publish_auth_modes=[{"auth_type": IAM}],  # only the chat function answers
            subscribe_auth_modes=[{"auth_type": COGNITO}],
            handler_configs={"on_subscribe": _direct(subscribe_source, "REQUEST_RESPONSE")},
            opts=self._child(),
        )
        self.register_outputs(
            {
                "apiId": self.api.api_id,
                "httpEndpoint": self.endpoint.http_endpoint,
                "realtimeEndpoint": self.endpoint.realtime_endpoint,
            }
        )

    def _child(self, **extra: object) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **extra)  # type: ignore[arg-type]

    def _create_api(self, args: EventsApiArgs) -> aws.appsync.Api:
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        # The API does not exist yet (it needs this role), so the trust is pinned to this
        # account's AppSync APIs in the region. AppSync's confused-deputy guidance:
        # https://docs.aws.amazon.com/appsync/latest/devguide/cross-service-confused-deputy-prevention.html
        logs_role = aws.iam.Role(
            f"{stack_prefix(self._name)}-api-logs-role",
            description="AppSync: write the Event API's logs",
            assume_role_policy=identity.account_id.apply(
                lambda account: iam.trust(
                    "appsync.amazonaws.com",
                    source_arns=[f"arn:aws:appsync:{args.region}:{account}:apis/*"],
                    source_account=account,
                )
            ),
            opts=renamed(f"{self._name}-logs-role", parent=self),
        )
        api = aws.appsync.Api(
            f"{self._name}-api",
            name=args.api_name,
            event_config={
                "auth_providers": [
                    {
                        "auth_type": COGNITO,
                        "cognito_config": {
                            "user_pool_id": args.user_pool_id,
                            "aws_region": args.region,
                        },
                    },
                    {"auth_type": IAM},
                ],
                "connection_auth_modes": [{"auth_type": COGNITO}, {"auth_type": IAM}],
                # Namespaces set their own modes; anything unset falls back to IAM only.
                "default_publish_auth_modes": [{"auth_type": IAM}],
                "default_subscribe_auth_modes": [{"auth_type": IAM}],
                "log_config": {
                    "cloudwatch_logs_role_arn": logs_role.arn,
                    "log_level": args.log_level,
                },
            },
            opts=self._child(),
        )
        # AppSync logs to /aws/appsync/apis/<apiId>; declaring it first sets its retention.
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-api-logs",
            name=api.api_id.apply(lambda api_id: f"/aws/appsync/apis/{api_id}"),
            retention_in_days=args.log_retention_days,
            opts=self._child(),
        )
        aws.iam.RolePolicy(
            f"{self._name}-logs-policy",
            role=logs_role.id,
            policy=log_group.arn.apply(
                lambda arn: iam.document(
                    iam.allow(
                        "WriteApiLogs",
                        ["logs:CreateLogStream", "logs:PutLogEvents"],
                        [arn, f"{arn}:*"],
                    )
                )
            ),
            opts=self._child(),
        )
        return api

    def _endpoint(self, args: EventsApiArgs) -> EventsEndpoint:
        return EventsEndpoint(
            api_id=self.api.api_id,
            api_arn=self.api.api_arn,
            http_endpoint=self.api.dns.apply(lambda dns: f"https://{dns['HTTP']}/event"),
            realtime_endpoint=self.api.dns.apply(
                lambda dns: f"wss://{dns['REALTIME']}/event/realtime"
            ),
            outbound_namespace_arn=self.api.api_arn.apply(
                lambda arn: f"{arn}/channelNamespace/{args.outbound_namespace}"
            ),
        )

    def _create_data_sources(self) -> tuple[aws.appsync.DataSource, aws.appsync.DataSource]:
        # chat through its alias: a qualified ARN, which Lambda invokes as that version, and
        # which an IAM policy must name itself (a function's, version's or alias's ARN each).
        # https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html
        targets = [self.handlers.chat_alias.arn, self.handlers.subscribe_function.arn]
        # Only this API may have AppSync assume the role: its ARN, or any ARN under it (the
        # form AppSync reports for the API's own sub-resources), in this account.
        # https://docs.aws.amazon.com/appsync/latest/devguide/cross-service-confused-deputy-prevention.html
        role = aws.iam.Role(
            f"{stack_prefix(self._name)}-handlers-role",
            description="AppSync: invoke the gateway's channel handlers",
            assume_role_policy=self.api.api_arn.apply(
                lambda arn: iam.trust(
                    "appsync.amazonaws.com",
                    source_arns=[arn, f"{arn}/*"],
                    source_account=arn.split(":")[4],
                )
            ),
            opts=renamed(f"{self._name}-handlers-role", parent=self),
        )
        policy = aws.iam.RolePolicy(
            f"{self._name}-handlers-policy",
            role=role.id,
            policy=pulumi.Output.all(*targets).apply(
                lambda arns: iam.document(
                    iam.allow("InvokeChannelHandlers", ["lambda:InvokeFunction"], arns)
                )
            ),
            opts=self._child(),
        )
        # Event API data source names allow letters, digits and '_' only.
        return tuple(
            aws.appsync.DataSource(
                f"{self._name}-{source}-source",
                api_id=self.api.api_id,
                name=f"{source}_function",
                type="AWS_LAMBDA",
                lambda_config={"function_arn": target},
                service_role_arn=role.arn,
                opts=self._child(depends_on=[policy]),
            )
            for source, target in zip(("chat", "subscribe"), targets, strict=True)
        )


def _direct(source: aws.appsync.DataSource, invoke_type: str) -> dict[str, object]:
    return {
        "behavior": "DIRECT",
        "integration": {
            "data_source_name": source.name,
            "lambda_config": {"invoke_type": invoke_type},
        },
    }
