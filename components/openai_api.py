"""The second door: an OpenAI-compatible Chat Completions API under ``/v1`` (docs/openai.md).

Why an API Gateway REST API, streamed to a Python function behind the Lambda Web Adapter:

* **Streaming.** REST APIs stream an integration's response to the client as it is produced
  when the integration's ``responseTransferMode`` is ``STREAM`` (announced 19 Nov 2025:
  https://aws.amazon.com/about-aws/whats-new/2025/11/api-gateway-response-streaming-rest-apis;
  https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html).
  A Lambda proxy integration then calls ``InvokeWithResponseStream`` through the URI
  ``arn:aws:apigateway:<region>:lambda:path/2021-11-15/functions/<arn>/response-streaming-invocations``
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html).
  A stream may last 15 minutes and may be idle 5 minutes on a Regional endpoint (30 seconds
  on an edge-optimized one), hence Regional. pulumi-aws 7.51.1 (requirements.txt) exposes the
  setting as ``aws.apigateway.Integration(response_transfer_mode=...)`` and allows a
  ``timeout_milliseconds`` of up to 900,000 with it.
* **Python.** Lambda streams responses natively only from Node.js managed runtimes; other
  languages use a custom runtime or the Lambda Web Adapter
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html). The
  function runs the managed ``python3.13`` runtime with the adapter's layer
  (``arn:aws:lambda:<region>:753240598075:layer:LambdaAdapterLayerArm64:<version>``,
  ``AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap``, ``AWS_LWA_INVOKE_MODE=response_stream``: the
  adapter's README, https://github.com/awslabs/aws-lambda-web-adapter), which runs a small
  HTTP server (``functions/openai_http.py``) and streams what it writes.
* **Authentication before any code runs.** A ``COGNITO_USER_POOLS`` authorizer validates the
  bearer token in API Gateway. With ``authorizationScopes`` on a method it takes access tokens,
  and "the method invocation is authorized if any method scopes matches a claimed scope in the
  access token" (https://docs.aws.amazon.com/apigateway/latest/api/API_Method.html): users'
  tokens carry ``aws.cognito.signin.user.admin`` (SRP/password sign-in) or ``openid``
  (hosted UI), machine clients' tokens ``ai-gateway/chat``, so one authorizer admits both
  kinds and a Lambda authorizer is not needed. The same field says that with scopes set "the
  client must provide an access token instead of an identity token": ID tokens are refused.
* **WAF.** A regional web ACL can be associated with an API Gateway REST API stage; Lambda
  function URLs are not among the resources WAF protects
  (https://docs.aws.amazon.com/waf/latest/developerguide/how-aws-waf-works-resources.html), and
  putting CloudFront with origin access control in front of one would require every POST to
  carry the SHA-256 of its body in ``x-amz-content-sha256``
  (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-lambda.html),
  which OpenAI SDKs do not send. In production the stage joins the Event API's web ACL.
* **Throttling and access logs** are stage settings
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html,
  https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from gateway.openai.clients import MACHINE_CLIENT_TIERS, encode_machine_client_tiers

from components import iam
from components.function_code import (
    DOOR_SCRIPT,
    LAMBDA_ARCHITECTURE,
    LAMBDA_RUNTIME,
    OPENAI_ENVIRONMENT,
)
from components.functions import TurnResources, model_access_policy
from components.identity import CHAT_SCOPE, USER_SCOPES

#: The Lambda Web Adapter's layer for arm64, published by the adapter's account in every
#: commercial Region. Version 26 is the one the adapter's README names (v1.0.0-rc1, README at
#: awslabs/aws-lambda-web-adapter@2194417, "Zip Packages"; version 25 was v0.9.1).
WEB_ADAPTER_ACCOUNT = "753240598075"
WEB_ADAPTER_LAYER_VERSION = 26
#: The port the adapter forwards to (``AWS_LWA_PORT``; its default is 8080) and the path of its
#: readiness check (``AWS_LWA_READINESS_CHECK_PATH``).
DOOR_PORT = 8080
READINESS_PATH = "/healthz"
#: ``InvokeWithResponseStream`` through API Gateway: API version 2021-11-15 and the
#: ``response-streaming-invocations`` action (response-transfer-mode-lambda.html).
STREAMING_INVOCATIONS = "2021-11-15/functions/{arn}/response-streaming-invocations"
#: The methods of the door: ``(path below /v1, HTTP method)``.
ROUTES = (("chat/completions", "POST"), ("models", "GET"))
#: Scopes a token must hold one of: users' (SRP or hosted-UI sign-in) and machine clients'.
AUTHORIZATION_SCOPES = (*USER_SCOPES, CHAT_SCOPE)
#: API Gateway's access log fields ($context variables:
#: https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-variables-for-access-logging.html);
#: the format must include $context.requestId or $context.extendedRequestId.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "ip": "$context.identity.sourceIp",
        "sub": "$context.authorizer.claims.sub",
        "clientId": "$context.authorizer.claims.client_id",
        "integrationLatency": "$context.integrationLatency",
        "integrationStatus": "$context.integration.status",
        "wafResponse": "$context.wafResponseCode",
        "error": "$context.error.message",
    },
    separators=(",", ":"),
)


def web_adapter_layer_arn(region: str, version: int = WEB_ADAPTER_LAYER_VERSION) -> str:
    """The Lambda Web Adapter's arm64 layer in ``region``."""
    return f"arn:aws:lambda:{region}:{WEB_ADAPTER_ACCOUNT}:layer:LambdaAdapterLayerArm64:{version}"


@dataclass
class OpenAiApiArgs:
    """Inputs of :class:`OpenAiApiComponent`."""

    api_name: str
    function_name: str
    #: The door's package (``function_code.door_archive``): sources and the executable script.
    code: pulumi.Archive
    #: The managed Powertools layer the chat function runs with (``GatewayFunctionsComponent``).
    powertools_layer: pulumi.Input[str]
    user_pool_arn: pulumi.Input[str]
    #: What running turns needs, shared with the chat function (``components.functions``).
    turn: TurnResources
    #: App client id -> tier of every machine client (``IdentityComponent``).
    machine_client_tiers: pulumi.Input[Mapping[str, str]] = field(default_factory=dict)
    throttle_rate: float = 50.0
    throttle_burst: int = 100
    #: Custom domain and its ACM certificate (in the turn's ``region``); empty: the execute-api URL.
    domain: str = ""
    certificate_arn: str = ""
    #: The web ACL to join (the Event API's, in production); ``None``: no WAF.
    web_acl_arn: pulumi.Input[str] | None = None
    log_retention_days: int = 30
    memory_mb: int = 256
    #: The turn's longest run; API Gateway keeps a streamed integration open this long.
    timeout_seconds: int = 300
    stage_name: str = "api"

    def __post_init__(self) -> None:
        if bool(self.domain) != bool(self.certificate_arn):
            raise ValueError("OpenAiApiArgs: domain and certificate_arn go together")
        if not 1 <= self.timeout_seconds <= 900:
            raise ValueError("OpenAiApiArgs.timeout_seconds: 1 to 900 (a stream's 15 minutes)")


class OpenAiApiComponent(pulumi.ComponentResource):
    """``POST /v1/chat/completions`` and ``GET /v1/models`` on a Regional REST API, each behind
    the Cognito authorizer and streamed from the door function."""

    function: aws.lambda_.Function
    role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup
    access_log_group: aws.cloudwatch.LogGroup
    api: aws.apigateway.RestApi
    authorizer: aws.apigateway.Authorizer
    methods: dict[str, aws.apigateway.Method]
    integrations: dict[str, aws.apigateway.Integration]
    stage: aws.apigateway.Stage
    web_acl_association: aws.wafv2.WebAclAssociation | None
    domain_name: aws.apigateway.DomainName | None
    #: ``https://<host>/<stage>/v1`` (or ``https://<domain>/v1``): the SDKs' ``base_url``.
    base_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: OpenAiApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:index:OpenAiApi", name, None, opts)
        self._name = name
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke_opts).account_id

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-function-logs",
            name=f"/aws/lambda/{args.function_name}",
            retention_in_days=args.log_retention_days,
            opts=self._child(),
        )
        self.role = self._create_role()
        policies = self._create_policies(args)
        self.function = self._create_function(args, policies)

        self.api = aws.apigateway.RestApi(
            f"{name}-api",
            name=args.api_name,
            description="ai-gateway: OpenAI-compatible Chat Completions API",
            endpoint_configuration={"types": "REGIONAL"},
            # With a custom domain, the domain is the one way in.
            disable_execute_api_endpoint=bool(args.domain),
            opts=self._child(),
        )
        self.authorizer = aws.apigateway.Authorizer(
            f"{name}-authorizer",
            rest_api=self.api.id,
            name="cognito",
            type="COGNITO_USER_POOLS",
            provider_arns=[args.user_pool_arn],
            identity_source="method.request.header.Authorization",
            opts=self._child(),
        )
        self.methods, self.integrations = self._create_routes(args)
        self.access_log_group, self.stage = self._create_stage(args)
        self.web_acl_association = None
        if args.web_acl_arn is not None:
            self.web_acl_association = aws.wafv2.WebAclAssociation(
                f"{name}-waf-association",
                resource_arn=self.stage.arn,
                web_acl_arn=args.web_acl_arn,
                opts=self._child(),
            )
        self.domain_name = None
        if args.domain:
            self.domain_name = self._create_domain(args)
            self.base_url = pulumi.Output.from_input(f"https://{args.domain}/v1")
        else:
            # A REST API's default endpoint: https://{api-id}.execute-api.{region}.amazonaws.com
            # /{stage} (https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-call-api.html).
            self.base_url = pulumi.Output.all(self.api.id, self.stage.stage_name).apply(
                lambda v: f"https://{v[0]}.execute-api.{args.turn.region}.amazonaws.com/{v[1]}/v1"
            )
        self.register_outputs(
            {
                "baseUrl": self.base_url,
                "restApiId": self.api.id,
                "functionName": self.function.name,
            }
        )

    def _child(self, **extra: object) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **extra)  # type: ignore[arg-type]

    # --- the function ------------------------------------------------------------------------

    def _create_role(self) -> aws.iam.Role:
        return aws.iam.Role(
            f"{self._name}-role",
            description="The gateway's OpenAI-compatible door function",
            assume_role_policy=self._account.apply(
                lambda account: iam.trust("lambda.amazonaws.com", source_account=account)
            ),
            opts=self._child(),
        )

    def _create_policies(self, args: OpenAiApiArgs) -> list[pulumi.Resource]:
        """The chat function's grants for running turns (``components.functions``), less
        publishing to the Event API, plus its own logs and traces."""
        runtime = aws.iam.RolePolicy(
            f"{self._name}-runtime",
            role=self.role.id,
            policy=pulumi.Output.all(
                self.log_group.arn,
                args.turn.statements(),
            ).apply(lambda v: iam.document(*v[1], *iam.log_and_trace(v[0]))),
            opts=self._child(),
        )
        models = model_access_policy(
            f"{self._name}-model-access", self.role, self._account, args.turn, self._child()
        )
        return [runtime, models]

    def _create_function(
        self, args: OpenAiApiArgs, policies: list[pulumi.Resource]
    ) -> aws.lambda_.Function:
        environment = pulumi.Output.all(
            args.turn.variables(OPENAI_ENVIRONMENT, "openai"), args.machine_client_tiers
        ).apply(
            lambda v: {
                **v[0],
                MACHINE_CLIENT_TIERS: encode_machine_client_tiers(v[1] or {}),
                # The Lambda Web Adapter (its README, "Configurations").
                "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
                "AWS_LWA_INVOKE_MODE": "response_stream",
                "AWS_LWA_PORT": str(DOOR_PORT),
                "AWS_LWA_READINESS_CHECK_PATH": READINESS_PATH,
            }
        )
        return aws.lambda_.Function(
            f"{self._name}-function",
            name=args.function_name,
            description="ai-gateway OpenAI-compatible door (Lambda Web Adapter, streamed)",
            role=self.role.arn,
            runtime=LAMBDA_RUNTIME,
            architectures=[LAMBDA_ARCHITECTURE],
            handler=DOOR_SCRIPT,
            code=args.code,
            layers=[web_adapter_layer_arn(args.turn.region), args.powertools_layer],
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            environment={"variables": environment},
            tracing_config={"mode": "Active"},
            logging_config={
                "log_format": "JSON",
                "log_group": self.log_group.name,
                "application_log_level": "INFO",
                "system_log_level": "WARN",
            },
            opts=self._child(depends_on=[self.log_group, *policies]),
        )

    # --- the API -----------------------------------------------------------------------------

    def _create_routes(
        self, args: OpenAiApiArgs
    ) -> tuple[dict[str, aws.apigateway.Method], dict[str, aws.apigateway.Integration]]:
        v1 = aws.apigateway.Resource(
            f"{self._name}-v1",
            rest_api=self.api.id,
            parent_id=self.api.root_resource_id,
            path_part="v1",
            opts=self._child(),
        )
        resources: dict[str, aws.apigateway.Resource] = {"": v1}
        uri = self.function.arn.apply(
            lambda arn: (
                f"arn:aws:apigateway:{args.turn.region}:lambda:path/"
                + STREAMING_INVOCATIONS.format(arn=arn)
            )
        )
        methods: dict[str, aws.apigateway.Method] = {}
        integrations: dict[str, aws.apigateway.Integration] = {}
        for path, http_method in ROUTES:
            parent = v1
            built = ""
            for part in path.split("/"):
                built = f"{built}/{part}".lstrip("/")
                if built not in resources:
                    resources[built] = aws.apigateway.Resource(
                        f"{self._name}-{built.replace('/', '-')}",
                        rest_api=self.api.id,
                        parent_id=parent.id,
                        path_part=part,
                        opts=self._child(),
                    )
                parent = resources[built]
            key = f"{http_method} /v1/{path}"
            slug = path.replace("/", "-")
            methods[key] = aws.apigateway.Method(
                f"{self._name}-{slug}-{http_method.lower()}",
                rest_api=self.api.id,
                resource_id=parent.id,
                http_method=http_method,
                authorization="COGNITO_USER_POOLS",
                authorizer_id=self.authorizer.id,
                authorization_scopes=list(AUTHORIZATION_SCOPES),
                opts=self._child(),
            )
            integrations[key] = aws.apigateway.Integration(
                f"{self._name}-{slug}-integration",
                rest_api=self.api.id,
                resource_id=parent.id,
                http_method=methods[key].http_method,
                type="AWS_PROXY",
                integration_http_method="POST",
                uri=uri,
                response_transfer_mode="STREAM",
                timeout_milliseconds=args.timeout_seconds * 1000,
                opts=self._child(),
            )
        aws.lambda_.Permission(
            f"{self._name}-invoke",
            function=self.function.name,
            action="lambda:InvokeFunction",
            principal="apigateway.amazonaws.com",
            # InvokeWithResponseStream "requires permission for the lambda:InvokeFunction
            # action" (https://docs.aws.amazon.com/lambda/latest/api/API_InvokeWithResponseStream.html).
            # Only this API's /v1 methods, from any of its stages.
            source_arn=self.api.execution_arn.apply(lambda arn: f"{arn}/*/*/v1/*"),
            opts=self._child(),
        )
        return methods, integrations

    def _create_stage(
        self, args: OpenAiApiArgs
    ) -> tuple[aws.cloudwatch.LogGroup, aws.apigateway.Stage]:
        # A new deployment whenever a route, method or integration changes: a deployment is a
        # snapshot of the API, and a stage keeps serving its old one until given a new one.
        shape = hashlib.sha256(
            json.dumps(
                {
                    "routes": ROUTES,
                    "scopes": AUTHORIZATION_SCOPES,
                    "timeout": args.timeout_seconds,
                    "transfer": "STREAM",
                },
                sort_keys=True,
            ).encode()
        ).hexdigest()
        deployment = aws.apigateway.Deployment(
            f"{self._name}-deployment",
            rest_api=self.api.id,
            triggers={
                "shape": shape,
                "function": self.function.arn,
                "authorizer": self.authorizer.id,
            },
            opts=self._child(
                depends_on=[*self.methods.values(), *self.integrations.values()],
                replace_on_changes=["triggers"],
                delete_before_replace=False,
            ),
        )
        access_logs = aws.cloudwatch.LogGroup(
            f"{self._name}-access-logs",
            name=f"/aws/apigateway/{args.api_name}/access",
            retention_in_days=args.log_retention_days,
            opts=self._child(),
        )
        account = self._create_logging_role(args, access_logs)
        stage = aws.apigateway.Stage(
            f"{self._name}-stage",
            rest_api=self.api.id,
            deployment=deployment.id,
            stage_name=args.stage_name,
            xray_tracing_enabled=True,
            access_log_settings={
                "destination_arn": access_logs.arn,
                "format": ACCESS_LOG_FORMAT,
            },
            opts=self._child(depends_on=[account]),
        )
        aws.apigateway.MethodSettings(
            f"{self._name}-stage-settings",
            rest_api=self.api.id,
            stage_name=stage.stage_name,
            method_path="*/*",
            settings={
                "throttling_rate_limit": args.throttle_rate,
                "throttling_burst_limit": args.throttle_burst,
                "metrics_enabled": True,
                "logging_level": "ERROR",
            },
            opts=self._child(),
        )
        return access_logs, stage

    def _create_logging_role(
        self, args: OpenAiApiArgs, access_logs: aws.cloudwatch.LogGroup
    ) -> aws.apigateway.Account:
        """The Region's API Gateway logging role. API Gateway writes a stage's logs only once
        the account has a CloudWatch role (set-up-logging.html, "Permissions for CloudWatch
        logging"); the setting is one per account and Region (AWS::ApiGateway::Account), so
        every stack sets an equivalent role scoped to this account's log groups there."""
        trust = self._account.apply(
            lambda account: iam.trust("apigateway.amazonaws.com", source_account=account)
        )
        # A short logical name: the role's physical name is it plus Pulumi's 8-character suffix,
        # and IAM allows 64 (tests/infra/test_name_limits.py declares the longest stack name).
        role = aws.iam.Role(
            f"{self._name}-gwlogs",
            description="API Gateway: write REST API logs to CloudWatch Logs",
            assume_role_policy=trust,
            opts=self._child(),
        )
        policy = aws.iam.RolePolicy(
            f"{self._name}-logging-policy",
            role=role.id,
            policy=self._account.apply(
                lambda account: iam.document(
                    iam.allow(
                        "WriteApiGatewayLogs",
                        [
                            "logs:CreateLogGroup",
                            "logs:CreateLogStream",
                            "logs:DescribeLogGroups",
                            "logs:DescribeLogStreams",
                            "logs:FilterLogEvents",
                            "logs:GetLogEvents",
                            "logs:PutLogEvents",
                        ],
                        [f"arn:aws:logs:{args.turn.region}:{account}:log-group:*"],
                    )
                )
            ),
            opts=self._child(),
        )
        return aws.apigateway.Account(
            f"{self._name}-logging",
            cloudwatch_role_arn=role.arn,
            opts=self._child(depends_on=[policy, access_logs]),
        )

    def _create_domain(self, args: OpenAiApiArgs) -> aws.apigateway.DomainName:
        domain = aws.apigateway.DomainName(
            f"{self._name}-domain",
            domain_name=args.domain,
            regional_certificate_arn=args.certificate_arn,
            endpoint_configuration={"types": "REGIONAL"},
            security_policy="TLS_1_2",
            opts=self._child(),
        )
        aws.apigateway.BasePathMapping(
            f"{self._name}-domain-mapping",
            rest_api=self.api.id,
            stage_name=self.stage.stage_name,
            domain_name=domain.domain_name,
            opts=self._child(),
        )
        return domain
