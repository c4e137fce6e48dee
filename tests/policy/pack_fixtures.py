"""Small stacks for the policy pack's tests, and helpers that run the pack over them.

Every helper goes through ``policy.offline``, i.e. pulumi-policy's analyzer servicer with the
pack's config reconciled as the CLI does, so a fixture exercises the same path as
``pulumi preview --policy-pack policy``. Resources are built from compliant baselines with one
property broken, in the shape the engine hands a pack (camelCase inputs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policy.offline import PackResult, Violation, analyze, load_config_file

STACK = "fixture"
PROVIDER_URN = f"urn:pulumi:{STACK}::ai-gateway::pulumi:providers:aws::aws"
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class FixtureResource:
    """A resource as ``devtools.declare`` reports one (the runner's ``Resource`` shape)."""

    type: str
    name: str
    urn: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    parent: str | None = None
    provider: str | None = PROVIDER_URN


def aws_provider(environment: str | None = "dev") -> FixtureResource:
    """The stack's explicit AWS provider; its default tags name the environment."""
    inputs: dict[str, Any] = {"region": "us-east-1"}
    if environment is not None:
        tags = {"project": "ai-gateway", "environment": environment, "cost-center": "ai-platform"}
        # Object-typed provider config reaches the engine JSON-encoded.
        inputs["defaultTags"] = json.dumps({"tags": tags})
    urn = PROVIDER_URN
    return FixtureResource("pulumi:providers:aws", "aws", urn, inputs, dict(inputs), provider=None)


def resource(type_: str, name: str, props: Mapping[str, Any], **outputs: Any) -> FixtureResource:
    """A custom resource with ``props`` as inputs; outputs are the inputs plus ``outputs``."""
    urn = f"urn:pulumi:{STACK}::ai-gateway::{type_}::{name}"
    return FixtureResource(type_, name, urn, dict(props), {**props, **outputs})


def run(
    resources: Iterable[FixtureResource],
    *,
    environment: str | None = "dev",
    config: Mapping[str, Any] | None = None,
) -> PackResult:
    """Run the pack over a stack of ``resources`` and their AWS provider."""
    return analyze(
        [aws_provider(environment), *resources],
        stack=STACK,
        config=load_config_file() if config is None else config,
    )


def _describe(violations: Sequence[Violation]) -> str:
    return "\n".join(f"  {v.policy} [{v.resource_name}]: {v.message}" for v in violations) or "  -"


def assert_stack_has_violation(
    policy: str, resources: Iterable[FixtureResource], **kwargs: Any
) -> list[Violation]:
    """``policy`` reports at least one violation over ``resources``; returns its violations."""
    result = run(resources, **kwargs)
    found = result.of_policy(policy)
    assert found, (
        f"expected a {policy} violation; the pack reported:\n{_describe(result.violations)}"
    )
    return found


def assert_stack_no_violations(
    policy: str, resources: Iterable[FixtureResource], **kwargs: Any
) -> None:
    found = run(resources, **kwargs).of_policy(policy)
    assert not found, f"expected no {policy} violation, got:\n{_describe(found)}"


def assert_has_violation(
    policy: str, type_: str, props: Mapping[str, Any], **kwargs: Any
) -> list[Violation]:
    """``policy`` reports the one resource of ``type_`` with ``props``."""
    subject = resource(type_, "subject", props)
    found = assert_stack_has_violation(policy, [subject], **kwargs)
    assert any(v.urn == subject.urn for v in found), _describe(found)
    return found


def assert_no_violations(policy: str, type_: str, props: Mapping[str, Any], **kwargs: Any) -> None:
    assert_stack_no_violations(policy, [resource(type_, "subject", props)], **kwargs)


# --- compliant baselines -------------------------------------------------------------------------

TABLE = "aws:dynamodb/table:Table"
BUCKET = "aws:s3/bucket:Bucket"
FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
USER_POOL = "aws:cognito/userPool:UserPool"
CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
API = "aws:appsync/api:Api"
NAMESPACE = "aws:appsync/channelNamespace:ChannelNamespace"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"
PARAMETER = "aws:ssm/parameter:Parameter"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"


def table(**changes: Any) -> dict[str, Any]:
    return {
        "name": "usage",
        "billingMode": "PAY_PER_REQUEST",
        "serverSideEncryption": {"enabled": True},
        "pointInTimeRecovery": {"enabled": True},
        "deletionProtectionEnabled": True,
        **changes,
    }


def user_pool(**changes: Any) -> dict[str, Any]:
    return {
        "passwordPolicy": {
            "minimumLength": 12,
            "requireLowercase": True,
            "requireUppercase": True,
            "requireNumbers": True,
            "requireSymbols": True,
            "temporaryPasswordValidityDays": 3,
        },
        "mfaConfiguration": "ON",
        "softwareTokenMfaConfiguration": {"enabled": True},
        "deletionProtection": "ACTIVE",
        **changes,
    }


def client(**changes: Any) -> dict[str, Any]:
    return {
        "userPoolId": "us-east-1_abc",
        "generateSecret": False,
        "enableTokenRevocation": True,
        "preventUserExistenceErrors": "ENABLED",
        **changes,
    }


def function(name: str = "chat", **changes: Any) -> dict[str, Any]:
    return {
        "name": name,
        "runtime": "python3.13",
        "architectures": ["arm64"],
        "tracingConfig": {"mode": "Active"},
        "handler": "handler.handler",
        **changes,
    }


def log_group(name: str, **changes: Any) -> dict[str, Any]:
    return {"name": name, "retentionInDays": 30, **changes}


def document(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: Sequence[str] | str, resources: Sequence[str] | str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


TLS_ONLY_STATEMENT = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::analytics", "arn:aws:s3:::analytics/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def bucket_stack(
    *,
    block: Mapping[str, Any] | None = None,
    policy: str | None = None,
    encryption: str | None = "AES256",
    force_destroy: bool = False,
) -> list[FixtureResource]:
    """A bucket named ``analytics`` with its public access block, policy and encryption; pass a
    changed part to break one guard, or ``None`` (for ``encryption``: ``""``) to leave it out."""
    name = "analytics"
    resources = [resource(BUCKET, name, {"bucket": name, "forceDestroy": force_destroy})]
    all_blocked = {
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    if block is not None:
        resources.append(
            resource(
                "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                f"{name}-public-access",
                {"bucket": name, **all_blocked, **block},
            )
        )
    if policy is not None:
        resources.append(
            resource(
                "aws:s3/bucketPolicy:BucketPolicy",
                f"{name}-policy",
                {"bucket": name, "policy": policy},
            )
        )
    if encryption:
        resources.append(
            resource(
                "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                f"{name}-encryption",
                {
                    "bucket": name,
                    "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": encryption}}],
                },
            )
        )
    return resources


COMPLIANT_BUCKET = {"block": {}, "policy": document(TLS_ONLY_STATEMENT)}


def event_api(**event_config: Any) -> FixtureResource:
    config = {
        "authProviders": [{"authType": "AMAZON_COGNITO_USER_POOLS"}, {"authType": "AWS_IAM"}],
        "connectionAuthModes": [{"authType": "AMAZON_COGNITO_USER_POOLS"}, {"authType": "AWS_IAM"}],
        "defaultPublishAuthModes": [{"authType": "AWS_IAM"}],
        "defaultSubscribeAuthModes": [{"authType": "AWS_IAM"}],
        "logConfig": {
            "logLevel": "ERROR",
            "cloudwatchLogsRoleArn": f"arn:aws:iam::{ACCOUNT}:role/logs",
        },
        **event_config,
    }
    api_id = "abcdefghijklmnopqrstuvwxyz"
    return resource(
        API,
        "events",
        {"name": "events", "eventConfig": config},
        apiId=api_id,
        apiArn=f"arn:aws:appsync:us-east-1:{ACCOUNT}:apis/{api_id}",
    )


def namespace(
    name: str, publish: Sequence[str] | None, subscribe: Sequence[str] | None
) -> FixtureResource:
    """A channel namespace of the :func:`event_api`; ``None`` modes fall back to the API's."""
    props: dict[str, Any] = {"apiId": "abcdefghijklmnopqrstuvwxyz", "name": name}
    if publish is not None:
        props["publishAuthModes"] = [{"authType": t} for t in publish]
    if subscribe is not None:
        props["subscribeAuthModes"] = [{"authType": t} for t in subscribe]
    return resource(NAMESPACE, name, props)


COGNITO, IAM = "AMAZON_COGNITO_USER_POOLS", "AWS_IAM"


def tier_config_parameter(tiers: Mapping[str, Any]) -> FixtureResource:
    value = json.dumps({"defaultTier": next(iter(tiers)), "tiers": tiers})
    name = f"/ai-gateway/{STACK}/tier-config"
    return resource(PARAMETER, "tier-config", {"name": name, "type": "String", "value": value})


def tier(*models: str, **changes: Any) -> dict[str, Any]:
    return {
        "models": list(models),
        "defaultModel": models[0],
        "maxOutputTokensPerTurn": 512,
        **changes,
    }


def alarm(name: str, actions: Sequence[str]) -> FixtureResource:
    return resource(
        ALARM, name, {"name": name, "alarmActions": list(actions), "metricName": "Errors"}
    )


TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:alarms"


@dataclass(frozen=True)
class Case:
    """A stack that violates ``policy`` (and, where it helps, its compliant counterpart)."""

    policy: str
    behaviour: str
    violating: list[FixtureResource]
    compliant: list[FixtureResource] | None = None
    environment: str | None = "dev"
    culprit: str | None = None  # the resource the violation must name; None for the stack
    config: Mapping[str, Any] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.policy}: {self.behaviour}"


# --- the hosted chat app's CDN -------------------------------------------------------------------

DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
HEADERS_POLICY = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
LOG_SOURCE = "aws:cloudwatch/logDeliverySource:LogDeliverySource"
LOG_DELIVERY = "aws:cloudwatch/logDelivery:LogDelivery"
DISTRIBUTION_ARN = f"arn:aws:cloudfront::{ACCOUNT}:distribution/E1ABCDEF"
HEADERS_POLICY_ID = "0f0e0d0c-headers"
CUSTOM_CERTIFICATE = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/0f0e0d0c-1b1a-2c2b-3d3c-4e4d4c4b"


def behaviour(**changes: Any) -> dict[str, Any]:
    return {
        "targetOriginId": "site",
        "viewerProtocolPolicy": "redirect-to-https",
        "allowedMethods": ["GET", "HEAD"],
        "cachedMethods": ["GET", "HEAD"],
        "responseHeadersPolicyId": HEADERS_POLICY_ID,
        **changes,
    }


def s3_origin(**changes: Any) -> dict[str, Any]:
    return {
        "originId": "site",
        "domainName": "site-bucket.s3.us-east-1.amazonaws.com",
        "originAccessControlId": "E2OAC",
        **changes,
    }


def distribution(**changes: Any) -> FixtureResource:
    """A compliant distribution: OAC S3 origin, HTTPS, headers policy, default certificate."""
    props = {
        "enabled": True,
        "origins": [s3_origin()],
        "defaultCacheBehavior": behaviour(),
        "orderedCacheBehaviors": [behaviour(pathPattern="/config.json")],
        "viewerCertificate": {"cloudfrontDefaultCertificate": True},
        **changes,
    }
    return resource(DISTRIBUTION, "web", props, arn=DISTRIBUTION_ARN)


def headers_policy(**security_changes: Any) -> FixtureResource:
    """A response headers policy with HSTS, nosniff, DENY and a CSP forbidding framing."""
    security = {
        "strictTransportSecurity": {"accessControlMaxAgeSec": 63072000, "override": True},
        "contentTypeOptions": {"override": True},
        "frameOptions": {"frameOption": "DENY", "override": True},
        "contentSecurityPolicy": {
            "contentSecurityPolicy": "default-src 'none'; frame-ancestors 'none'",
            "override": True,
        },
        **security_changes,
    }
    security = {k: v for k, v in security.items() if v is not None}
    return resource(
        HEADERS_POLICY, "headers", {"securityHeadersConfig": security}, id=HEADERS_POLICY_ID
    )


def access_logs(*, log_type: str = "ACCESS_LOGS") -> list[FixtureResource]:
    """Standard logging (v2) of :func:`distribution`: a delivery source and its delivery."""
    source = resource(
        LOG_SOURCE,
        "web-logs-source",
        {"name": "web-logs", "logType": log_type, "resourceArn": DISTRIBUTION_ARN},
    )
    delivery = resource(
        LOG_DELIVERY,
        "web-logs-delivery",
        {
            "deliverySourceName": "web-logs",
            "deliveryDestinationArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:delivery-destination:d",
        },
    )
    return [source, delivery]


# --- the OpenAI-compatible door (an API Gateway REST API) ----------------------------------------

REST_RESOURCE = "aws:apigateway/resource:Resource"
REST_METHOD = "aws:apigateway/method:Method"
REST_INTEGRATION = "aws:apigateway/integration:Integration"
REST_STAGE = "aws:apigateway/stage:Stage"
REST_METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
REST_API_ID = "a1b2c3d4e5"
DOOR_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:door"
STREAMING_URI = (
    "arn:aws:apigateway:us-east-1:lambda:path/2021-11-15/functions/"
    f"{DOOR_ARN}/response-streaming-invocations"
)
BUFFERED_URI = (
    f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{DOOR_ARN}/invocations"
)
STAGE_ARN = f"arn:aws:apigateway:us-east-1::/restapis/{REST_API_ID}/stages/api"


def chat_completions_route(**integration: Any) -> list[FixtureResource]:
    """``/v1/chat/completions``'s resources and its streamed Lambda proxy integration."""
    v1 = resource(REST_RESOURCE, "v1", {"restApi": REST_API_ID, "pathPart": "v1"}, id="r-v1")
    chat = resource(
        REST_RESOURCE,
        "chat",
        {"restApi": REST_API_ID, "pathPart": "chat", "parentId": "r-v1"},
        id="r-chat",
    )
    completions = resource(
        REST_RESOURCE,
        "completions",
        {"restApi": REST_API_ID, "pathPart": "completions", "parentId": "r-chat"},
        id="r-completions",
    )
    props = {
        "restApi": REST_API_ID,
        "resourceId": "r-completions",
        "httpMethod": "POST",
        "type": "AWS_PROXY",
        "integrationHttpMethod": "POST",
        "uri": STREAMING_URI,
        "responseTransferMode": "STREAM",
        **integration,
    }
    return [v1, chat, completions, resource(REST_INTEGRATION, "chat-integration", props)]


def rest_method(**changes: Any) -> dict[str, Any]:
    return {
        "restApi": REST_API_ID,
        "resourceId": "r-completions",
        "httpMethod": "POST",
        "authorization": "COGNITO_USER_POOLS",
        "authorizerId": "auth1",
        "authorizationScopes": ["ai-gateway/chat"],
        **changes,
    }


def rest_stage(**changes: Any) -> FixtureResource:
    props = {
        "restApi": REST_API_ID,
        "stageName": "api",
        "deployment": "dep1",
        "accessLogSettings": {
            "destinationArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/apigateway/door",
            "format": '{"requestId":"$context.requestId"}',
        },
        **changes,
    }
    return resource(REST_STAGE, "door-stage", props, arn=STAGE_ARN)


def rest_method_settings(**settings: Any) -> FixtureResource:
    props = {
        "restApi": REST_API_ID,
        "stageName": "api",
        "methodPath": "*/*",
        "settings": {"throttlingRateLimit": 50.0, "throttlingBurstLimit": 100, **settings},
    }
    return resource(REST_METHOD_SETTINGS, "door-settings", props)


def machine_client(**changes: Any) -> dict[str, Any]:
    """A compliant machine client: a secret and only the client-credentials grant."""
    props = {
        "generateSecret": True,
        "allowedOauthFlowsUserPoolClient": True,
        "allowedOauthFlows": ["client_credentials"],
        "allowedOauthScopes": ["ai-gateway/chat"],
        "explicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH"],
        **changes,
    }
    return client(**{k: v for k, v in props.items() if v is not None})
