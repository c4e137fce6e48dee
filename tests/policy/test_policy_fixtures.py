"""Every policy of the pack has a fixture that violates it, reported under the policy's name by
pulumi-policy's analyzer, and most have a compliant counterpart the policy lets through."""

from __future__ import annotations

import importlib

import pytest
from pack_fixtures import (
    BUCKET,
    BUFFERED_URI,
    CLIENT,
    COGNITO,
    COMPLIANT_BUCKET,
    CUSTOM_CERTIFICATE,
    FUNCTION,
    IAM,
    LOG_GROUP,
    REST_METHOD,
    ROLE,
    ROLE_POLICY,
    STAGE_ARN,
    TABLE,
    TLS_ONLY_STATEMENT,
    TOPIC,
    TOPIC_ARN,
    USER_POOL,
    WAF_ASSOCIATION,
    Case,
    FixtureResource,
    access_logs,
    alarm,
    allow,
    assert_stack_has_violation,
    assert_stack_no_violations,
    behaviour,
    bucket_stack,
    chat_completions_route,
    client,
    distribution,
    document,
    event_api,
    function,
    headers_policy,
    log_group,
    machine_client,
    namespace,
    resource,
    rest_method,
    rest_method_settings,
    rest_stage,
    run,
    s3_origin,
    table,
    tier,
    tier_config_parameter,
    user_pool,
)

from policy.offline import load_config_file

NOVA_LITE = "amazon.nova-lite-v1:0"
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
# Approved by an organisation but past its Bedrock EOL date (model-catalog.json: 2026-10-14).
SONNET_4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"
APPROVING_SONNET_4 = {"models-in-catalog": {"approvedModels": [NOVA_LITE, SONNET_4]}}
UNAPPROVED = "meta.llama3-70b-instruct-v1:0"
XRAY = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]


def _firehose(**changes):
    props = {"name": "turns", "destination": "extended_s3", **changes}
    return resource("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream", "turns", props)


def _workgroup(configuration):
    return resource("aws:athena/workgroup:Workgroup", "analytics", {"configuration": configuration})


_SAVED_QUERIES = load_config_file()["saved-queries-declared"]
SAVED_LOG_QUERIES = _SAVED_QUERIES["logsInsightsQueries"]
NAMED_QUERIES = _SAVED_QUERIES["athenaNamedQueries"]
QUERY_DEFINITION = "aws:cloudwatch/queryDefinition:QueryDefinition"
NAMED_QUERY = "aws:athena/namedQuery:NamedQuery"


def _saved_log_queries(*, skip: str = "", log_groups=("/aws/lambda/chat-1a2b",)):
    """The runbook's saved Logs Insights queries, scoped to ``log_groups`` (but ``skip``)."""
    return [
        resource(
            QUERY_DEFINITION,
            f"queries-{key}",
            {
                "name": f"ai-gateway/fixture/{key}",
                "queryString": 'filter message = "turn finished"',
                "logGroupNames": list(log_groups),
            },
        )
        for key in SAVED_LOG_QUERIES
        if key != skip
    ]


def _named_queries(*, skip: str = "", database: str = "ai_gateway_fixture"):
    return [
        resource(
            NAMED_QUERY,
            f"query-{key}",
            {"name": key, "database": database, "workgroup": "analytics", "query": "SELECT 1"},
        )
        for key in NAMED_QUERIES
        if key != skip
    ]


ENCRYPTED_WORKGROUP = {
    "enforceWorkgroupConfiguration": True,
    "resultConfiguration": {
        "outputLocation": "s3://analytics/athena/",
        "encryptionConfiguration": {"encryptionOption": "SSE_S3"},
    },
}

CASES = [
    Case(
        "dynamodb-table-encrypted",
        "table on the AWS-owned key",
        [resource(TABLE, "usage", table(serverSideEncryption={"enabled": False}))],
        [resource(TABLE, "usage", table())],
        culprit="usage",
    ),
    Case(
        "dynamodb-table-encrypted",
        "table without serverSideEncryption",
        [
            resource(
                TABLE, "usage", {k: v for k, v in table().items() if k != "serverSideEncryption"}
            )
        ],
        culprit="usage",
    ),
    Case(
        "firehose-stream-encrypted",
        "stream without server-side encryption",
        [_firehose()],
        [_firehose(serverSideEncryption={"enabled": True, "keyType": "AWS_OWNED_CMK"})],
        culprit="turns",
    ),
    Case(
        "sns-topic-encrypted",
        "topic without a KMS key",
        [resource(TOPIC, "alarms", {"name": "alarms"})],
        [resource(TOPIC, "alarms", {"name": "alarms", "kmsMasterKeyId": "alias/aws/sns"})],
        culprit="alarms",
    ),
    Case(
        "athena-workgroup-encrypted",
        "workgroup with unencrypted results",
        [_workgroup({"enforceWorkgroupConfiguration": True, "resultConfiguration": {}})],
        [_workgroup(ENCRYPTED_WORKGROUP)],
        culprit="analytics",
    ),
    Case(
        "athena-workgroup-encrypted",
        "workgroup that lets queries override its settings",
        [_workgroup({**ENCRYPTED_WORKGROUP, "enforceWorkgroupConfiguration": False})],
        culprit="analytics",
    ),
    Case(
        "s3-bucket-encrypted",
        "bucket without default encryption",
        bucket_stack(**COMPLIANT_BUCKET, encryption=""),
        bucket_stack(**COMPLIANT_BUCKET),
        culprit="analytics",
    ),
    Case(
        "s3-public-access-blocked",
        "bucket without a public access block",
        bucket_stack(policy=COMPLIANT_BUCKET["policy"]),
        bucket_stack(**COMPLIANT_BUCKET),
        culprit="analytics",
    ),
    Case(
        "s3-public-access-blocked",
        "public access block allowing public policies",
        bucket_stack(**{**COMPLIANT_BUCKET, "block": {"blockPublicPolicy": False}}),
        culprit="analytics-public-access",
    ),
    Case(
        "s3-tls-only",
        "bucket policy without the insecure-transport deny",
        bucket_stack(block={}, policy=document(allow("s3:GetObject", "arn:aws:s3:::analytics/*"))),
        bucket_stack(**COMPLIANT_BUCKET),
        culprit="analytics",
    ),
    Case(
        "s3-tls-only",
        "bucket without a bucket policy",
        bucket_stack(block={}),
        culprit="analytics",
    ),
    Case(
        "prod-data-protected",
        "production table without point-in-time recovery",
        [resource(TABLE, "usage", table(pointInTimeRecovery={"enabled": False}))],
        [resource(TABLE, "usage", table())],
        environment="prod",
        culprit="usage",
    ),
    Case(
        "prod-data-protected",
        "production table without deletion protection",
        [resource(TABLE, "usage", table(deletionProtectionEnabled=False))],
        environment="prod",
        culprit="usage",
    ),
    Case(
        "prod-data-protected",
        "production user pool without deletion protection",
        [resource(USER_POOL, "users", user_pool(deletionProtection="INACTIVE"))],
        [resource(USER_POOL, "users", user_pool())],
        environment="prod",
        culprit="users",
    ),
    Case(
        "prod-data-protected",
        "production bucket that can be force-destroyed",
        [resource(BUCKET, "analytics", {"bucket": "analytics", "forceDestroy": True})],
        [resource(BUCKET, "analytics", {"bucket": "analytics", "forceDestroy": False})],
        environment="prod",
        culprit="analytics",
    ),
    Case(
        "lambda-python-runtime",
        "function on Node.js",
        [resource(FUNCTION, "chat", function(runtime="nodejs22.x"))],
        [resource(FUNCTION, "chat", function())],
        culprit="chat",
    ),
    Case(
        "lambda-python-runtime",
        "function on an unsupported Python",
        [resource(FUNCTION, "chat", function(runtime="python3.9"))],
        culprit="chat",
    ),
    Case(
        "lambda-arm64",
        "function on x86_64",
        [resource(FUNCTION, "chat", function(architectures=["x86_64"]))],
        [resource(FUNCTION, "chat", function())],
        culprit="chat",
    ),
    Case(
        "lambda-arm64",
        "function with the default architecture",
        [resource(FUNCTION, "chat", {k: v for k, v in function().items() if k != "architectures"})],
        culprit="chat",
    ),
    Case(
        "lambda-xray-tracing",
        "function passing traces through",
        [resource(FUNCTION, "chat", function(tracingConfig={"mode": "PassThrough"}))],
        [resource(FUNCTION, "chat", function())],
        culprit="chat",
    ),
    Case(
        "log-group-retention",
        "log group kept forever",
        [resource(LOG_GROUP, "chat-logs", {"name": "/aws/lambda/chat"})],
        [resource(LOG_GROUP, "chat-logs", log_group("/aws/lambda/chat"))],
        culprit="chat-logs",
    ),
    Case(
        "lambda-log-group",
        "function whose log group the stack does not declare",
        [resource(FUNCTION, "chat", function("chat-1a2b"))],
        [
            resource(FUNCTION, "chat", function("chat-1a2b")),
            resource(LOG_GROUP, "chat-logs", log_group("/aws/lambda/chat-1a2b")),
        ],
        culprit="chat",
    ),
    Case(
        "lambda-log-group",
        "function whose log group has no retention",
        [
            resource(FUNCTION, "chat", function("chat-1a2b")),
            resource(LOG_GROUP, "chat-logs", {"name": "/aws/lambda/chat-1a2b"}),
        ],
        culprit="chat-logs",
    ),
    Case(
        "lambda-log-group",
        "function logging to an undeclared custom log group",
        [
            resource(
                FUNCTION,
                "chat",
                function("chat-1a2b", loggingConfig={"logFormat": "JSON", "logGroup": "/gw/chat"}),
            ),
            resource(LOG_GROUP, "chat-logs", log_group("/aws/lambda/chat-1a2b")),
        ],
        [
            resource(
                FUNCTION,
                "chat",
                function("chat-1a2b", loggingConfig={"logFormat": "JSON", "logGroup": "/gw/chat"}),
            ),
            resource(LOG_GROUP, "chat-logs", log_group("/gw/chat")),
        ],
        culprit="chat",
    ),
    Case(
        "iam-no-wildcard-actions",
        "role policy allowing dynamodb:*",
        [
            resource(
                ROLE_POLICY,
                "chat-policy",
                {
                    "role": "chat",
                    "policy": document(allow("dynamodb:*", "arn:aws:dynamodb:::table/usage")),
                },
            )
        ],
        [
            resource(
                ROLE_POLICY,
                "chat-policy",
                {
                    "role": "chat",
                    "policy": document(
                        allow(["dynamodb:UpdateItem"], "arn:aws:dynamodb:::table/usage")
                    ),
                },
            )
        ],
        culprit="chat-policy",
    ),
    Case(
        "iam-no-wildcard-actions",
        "role inline policy allowing everything",
        [
            resource(
                ROLE,
                "chat-role",
                {"inlinePolicies": [{"name": "admin", "policy": document(allow("*", "*"))}]},
            )
        ],
        culprit="chat-role",
    ),
    Case(
        "iam-no-wildcard-actions",
        "allow statement with NotAction",
        [
            resource(
                ROLE_POLICY,
                "chat-policy",
                {"policy": document({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})},
            )
        ],
        culprit="chat-policy",
    ),
    Case(
        "iam-no-wildcard-resources",
        "table read on every resource",
        [
            resource(
                ROLE_POLICY, "chat-policy", {"policy": document(allow(["dynamodb:GetItem"], "*"))}
            )
        ],
        [resource(ROLE_POLICY, "chat-policy", {"policy": document(allow(XRAY, "*"))})],
        culprit="chat-policy",
    ),
    Case(
        "iam-no-wildcard-resources",
        "X-Ray statement smuggling another action onto '*'",
        [
            resource(
                ROLE_POLICY,
                "chat-policy",
                {"policy": document(allow([*XRAY, "bedrock:InvokeModel"], ["*"]))},
            )
        ],
        culprit="chat-policy",
    ),
    Case(
        "cognito-password-policy",
        "eight-character passwords",
        [
            resource(
                USER_POOL,
                "users",
                user_pool(passwordPolicy={**user_pool()["passwordPolicy"], "minimumLength": 8}),
            )
        ],
        [resource(USER_POOL, "users", user_pool())],
        culprit="users",
    ),
    Case(
        "cognito-password-policy",
        "no password policy (Cognito's 8-character default)",
        [
            resource(
                USER_POOL, "users", {k: v for k, v in user_pool().items() if k != "passwordPolicy"}
            )
        ],
        culprit="users",
    ),
    Case(
        "cognito-mfa-in-prod",
        "production pool with optional MFA",
        [resource(USER_POOL, "users", user_pool(mfaConfiguration="OPTIONAL"))],
        [resource(USER_POOL, "users", user_pool())],
        environment="prod",
        culprit="users",
    ),
    Case(
        "cognito-public-client",
        "client with a secret",
        [resource(CLIENT, "web", client(generateSecret=True))],
        [resource(CLIENT, "web", client())],
        culprit="web",
    ),
    Case(
        "cognito-public-client",
        "client with a secret that users can sign in with through the hosted UI",
        [
            resource(
                CLIENT,
                "web",
                client(generateSecret=True, allowedOauthFlows=["code", "client_credentials"]),
            )
        ],
        # A machine client (client-credentials only) legitimately holds a secret.
        [resource(CLIENT, "machine", machine_client())],
        culprit="web",
    ),
    Case(
        "cognito-machine-client",
        "client-credentials client that also allows the code flow",
        [
            resource(
                CLIENT, "machine", machine_client(allowedOauthFlows=["client_credentials", "code"])
            )
        ],
        [resource(CLIENT, "machine", machine_client())],
        culprit="machine",
    ),
    Case(
        "cognito-machine-client",
        "client-credentials client left with Cognito's default sign-in flows",
        [resource(CLIENT, "machine", machine_client(explicitAuthFlows=None))],
        culprit="machine",
    ),
    Case(
        "cognito-machine-client",
        "client-credentials client that allows SRP sign-in",
        [
            resource(
                CLIENT,
                "machine",
                machine_client(
                    explicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
                ),
            )
        ],
        culprit="machine",
    ),
    Case(
        "apigateway-lambda-integrations-streamed",
        "chat completions integration left BUFFERED",
        chat_completions_route(responseTransferMode="BUFFERED"),
        chat_completions_route(),
        culprit="chat-integration",
    ),
    Case(
        "apigateway-lambda-integrations-streamed",
        "chat completions integration in STREAM mode calling the buffered Invoke",
        chat_completions_route(uri=BUFFERED_URI),
        culprit="chat-integration",
    ),
    Case(
        "apigateway-methods-authorized",
        "method open to anyone",
        [resource(REST_METHOD, "chat-post", rest_method(authorization="NONE"))],
        [resource(REST_METHOD, "chat-post", rest_method())],
        culprit="chat-post",
    ),
    Case(
        "apigateway-methods-authorized",
        "Cognito method without its authorizer",
        [resource(REST_METHOD, "chat-post", rest_method(authorizerId=None))],
        culprit="chat-post",
    ),
    Case(
        "apigateway-stage-throttled-and-logged",
        "stage without a throttle",
        [rest_stage()],
        [rest_stage(), rest_method_settings()],
        culprit="door-stage",
    ),
    Case(
        "apigateway-stage-throttled-and-logged",
        "stage throttled at zero requests per second",
        [rest_stage(), rest_method_settings(throttlingRateLimit=0)],
        culprit="door-stage",
    ),
    Case(
        "apigateway-stage-throttled-and-logged",
        "stage without access logs",
        [rest_stage(accessLogSettings=None), rest_method_settings()],
        culprit="door-stage",
    ),
    Case(
        "prod-rest-api-waf",
        "production REST API stage without a web ACL",
        [rest_stage()],
        [
            rest_stage(),
            resource(
                WAF_ASSOCIATION,
                "door-waf",
                {
                    "resourceArn": STAGE_ARN,
                    "webAclArn": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/gw/1",
                },
            ),
        ],
        environment="prod",
        culprit="door-stage",
    ),
    Case(
        "cognito-public-client",
        "client whose refresh tokens cannot be revoked",
        [resource(CLIENT, "web", client(enableTokenRevocation=False))],
        culprit="web",
    ),
    Case(
        "appsync-event-api-logging",
        "Event API logging nothing",
        [
            event_api(
                logConfig={"logLevel": "NONE", "cloudwatchLogsRoleArn": "arn:aws:iam::1:role/l"}
            )
        ],
        [event_api()],
        culprit="events",
    ),
    Case(
        "appsync-event-api-logging",
        "Event API without a log config",
        [event_api(logConfig=None)],
        culprit="events",
    ),
    Case(
        "appsync-outbound-publish-iam-only",
        "outbound namespace users can publish to",
        [event_api(), namespace("replies", publish=[COGNITO, IAM], subscribe=[COGNITO])],
        [event_api(), namespace("replies", publish=[IAM], subscribe=[COGNITO])],
        culprit="replies",
    ),
    Case(
        "appsync-outbound-publish-iam-only",
        "outbound namespace inheriting the API's user publish default",
        [
            event_api(defaultPublishAuthModes=[{"authType": COGNITO}]),
            namespace("replies", publish=None, subscribe=[COGNITO]),
        ],
        culprit="replies",
    ),
    Case(
        "appsync-inbound-not-subscribable",
        "inbound namespace users can subscribe to",
        [event_api(), namespace("chat", publish=[COGNITO], subscribe=[COGNITO, IAM])],
        [event_api(), namespace("chat", publish=[COGNITO], subscribe=[IAM])],
        culprit="chat",
    ),
    Case(
        "appsync-inbound-not-subscribable",
        "inbound namespace inheriting the API's user subscribe default",
        [
            event_api(defaultSubscribeAuthModes=[{"authType": COGNITO}]),
            namespace("chat", publish=[COGNITO], subscribe=None),
        ],
        culprit="chat",
    ),
    Case(
        "models-in-catalog",
        "tier allowing a model outside the catalog",
        [tier_config_parameter({"free": tier(NOVA_LITE, UNAPPROVED)})],
        [tier_config_parameter({"free": tier(NOVA_LITE, HAIKU)})],
        culprit="tier-config",
    ),
    Case(
        "models-in-catalog",
        "tier falling back to a model outside the catalog",
        [tier_config_parameter({"pro": tier(HAIKU, fallbackModel=UNAPPROVED)})],
        culprit="tier-config",
    ),
    Case(
        "models-in-catalog",
        "role allowed to invoke a model outside the catalog",
        [
            tier_config_parameter({"free": tier(NOVA_LITE)}),
            resource(
                ROLE_POLICY,
                "chat-policy",
                {
                    "policy": document(
                        allow(
                            ["bedrock:InvokeModelWithResponseStream"],
                            [f"arn:aws:bedrock:us-east-1::foundation-model/{UNAPPROVED}"],
                        )
                    )
                },
            ),
        ],
        [
            tier_config_parameter({"free": tier(NOVA_LITE)}),
            resource(
                ROLE_POLICY,
                "chat-policy",
                {
                    "policy": document(
                        allow(
                            ["bedrock:InvokeModelWithResponseStream"],
                            [
                                f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{HAIKU}",
                                "arn:aws:bedrock:*::foundation-model/"
                                "anthropic.claude-haiku-4-5-20251001-v1:0",
                            ],
                        )
                    )
                },
            ),
        ],
        culprit="chat-policy",
    ),
    Case(
        "models-in-catalog",
        "tier allowing an approved model that has reached end of life on Bedrock",
        [tier_config_parameter({"pro": tier(NOVA_LITE, SONNET_4)})],
        [tier_config_parameter({"pro": tier(NOVA_LITE)})],
        culprit="tier-config",
        config=APPROVING_SONNET_4,
    ),
    Case(
        "models-in-catalog",
        "tier allowing an approved model the lifecycle catalog does not know",
        [tier_config_parameter({"pro": tier(NOVA_LITE, UNAPPROVED)})],
        [tier_config_parameter({"pro": tier(NOVA_LITE)})],
        culprit="tier-config",
        config={"models-in-catalog": {"approvedModels": [NOVA_LITE, UNAPPROVED]}},
    ),
    Case(
        "models-in-catalog",
        "role allowed to invoke an approved model that is Legacy on Bedrock",
        [
            tier_config_parameter({"free": tier(NOVA_LITE)}),
            resource(
                ROLE_POLICY,
                "chat-policy",
                {
                    "policy": document(
                        allow(
                            ["bedrock:InvokeModelWithResponseStream"],
                            [
                                f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{SONNET_4}"
                            ],
                        )
                    )
                },
            ),
        ],
        culprit="chat-policy",
        config={
            "models-in-catalog": {"approvedModels": [NOVA_LITE, SONNET_4], "asOf": "2026-05-01"}
        },
    ),
    Case(
        "models-in-catalog",
        "stack without a tier-config parameter",
        [resource(TABLE, "usage", table())],
    ),
    Case(
        "required-tags",
        "resource tagged by hand without the provider's default tags",
        [resource(TABLE, "usage", table(tags={"project": "ai-gateway"}))],
        [
            resource(
                TABLE,
                "usage",
                table(tags={"project": "ai-gateway", "environment": "dev", "cost-center": "x"}),
            )
        ],
        environment=None,
        culprit="usage",
    ),
    Case(
        "prod-alarms-notify",
        "production alarm notifying nobody",
        [resource(TOPIC, "alarms", {"name": "alarms"}, arn=TOPIC_ARN), alarm("errors", [])],
        [
            resource(TOPIC, "alarms", {"name": "alarms"}, arn=TOPIC_ARN),
            alarm("errors", [TOPIC_ARN]),
        ],
        environment="prod",
        culprit="errors",
    ),
    Case(
        "prod-alarms-notify",
        "production stack without alarms",
        [resource(TOPIC, "alarms", {"name": "alarms"}, arn=TOPIC_ARN)],
        environment="prod",
    ),
    Case(
        "prod-event-api-waf",
        "production Event API without a web ACL",
        [event_api()],
        [
            event_api(),
            resource(
                WAF_ASSOCIATION,
                "events-waf",
                {
                    "resourceArn": event_api().outputs["apiArn"],
                    "webAclArn": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/gw/1",
                },
            ),
        ],
        environment="prod",
        culprit="events",
    ),
    Case(
        "cloudfront-s3-origin-access-control",
        "S3 origin without origin access control",
        [distribution(origins=[s3_origin(originAccessControlId="")])],
        [distribution()],
        culprit="web",
    ),
    Case(
        "cloudfront-s3-origin-access-control",
        "S3 origin behind a legacy origin access identity",
        [
            distribution(
                origins=[
                    s3_origin(
                        originAccessControlId="",
                        s3OriginConfig={
                            "originAccessIdentity": "origin-access-identity/cloudfront/E1OAI"
                        },
                    )
                ]
            )
        ],
        culprit="web",
    ),
    Case(
        "cloudfront-s3-origin-access-control",
        "public S3 website endpoint as origin",
        [
            distribution(
                origins=[
                    {
                        "originId": "site",
                        "domainName": "site.s3-website-us-east-1.amazonaws.com",
                        "customOriginConfig": {"originProtocolPolicy": "http-only"},
                    }
                ]
            )
        ],
        culprit="web",
    ),
    Case(
        "cloudfront-viewer-https",
        "default behaviour serving plain HTTP",
        [distribution(defaultCacheBehavior=behaviour(viewerProtocolPolicy="allow-all"))],
        [distribution()],
        culprit="web",
    ),
    Case(
        "cloudfront-viewer-https",
        "config.json behaviour serving plain HTTP",
        [
            distribution(
                orderedCacheBehaviors=[
                    behaviour(pathPattern="/config.json", viewerProtocolPolicy="allow-all")
                ]
            )
        ],
        culprit="web",
    ),
    Case(
        "cloudfront-minimum-tls",
        "custom certificate allowing TLS 1.0",
        [
            distribution(
                aliases=["chat.example.com"],
                viewerCertificate={
                    "acmCertificateArn": CUSTOM_CERTIFICATE,
                    "sslSupportMethod": "sni-only",
                    "minimumProtocolVersion": "TLSv1",
                },
            )
        ],
        [
            distribution(
                aliases=["chat.example.com"],
                viewerCertificate={
                    "acmCertificateArn": CUSTOM_CERTIFICATE,
                    "sslSupportMethod": "sni-only",
                    "minimumProtocolVersion": "TLSv1.2_2021",
                },
            )
        ],
        culprit="web",
    ),
    Case(
        "cloudfront-response-headers",
        "default behaviour without a response headers policy",
        [
            distribution(defaultCacheBehavior=behaviour(responseHeadersPolicyId=None)),
            headers_policy(),
        ],
        [distribution(), headers_policy()],
        culprit="web",
    ),
    Case(
        "cloudfront-response-headers",
        "headers policy allowing framing",
        [distribution(), headers_policy(frameOptions={"frameOption": "SAMEORIGIN"})],
        culprit="headers",
    ),
    Case(
        "cloudfront-response-headers",
        "headers policy without HSTS",
        [distribution(), headers_policy(strictTransportSecurity=None)],
        culprit="headers",
    ),
    Case(
        "cloudfront-response-headers",
        "headers policy without a CSP",
        [distribution(), headers_policy(contentSecurityPolicy=None)],
        culprit="headers",
    ),
    Case(
        "prod-cloudfront-access-logs",
        "production distribution without access logs",
        [distribution()],
        [distribution(), *access_logs()],
        environment="prod",
        culprit="web",
    ),
    Case(
        "prod-cloudfront-access-logs",
        "production distribution with a log source but no delivery",
        [distribution(), access_logs()[0]],
        environment="prod",
        culprit="web",
    ),
]


CASES += [
    Case(
        "saved-queries-declared",
        "a stack with functions but without one of the runbook's Logs Insights queries",
        [
            resource(FUNCTION, "chat", function("chat-1a2b")),
            *_saved_log_queries(skip="errors-by-code"),
        ],
        [resource(FUNCTION, "chat", function("chat-1a2b")), *_saved_log_queries()],
    ),
    Case(
        "saved-queries-declared",
        "a saved Logs Insights query that reads no log group",
        [resource(FUNCTION, "chat", function("chat-1a2b")), *_saved_log_queries(log_groups=())],
        culprit="queries-top-users-by-tokens",
    ),
    Case(
        "saved-queries-declared",
        "a saved Logs Insights query over a log group that is not a function's",
        [
            resource(FUNCTION, "chat", function("chat-1a2b")),
            *_saved_log_queries(log_groups=("/aws/vendedlogs/events",)),
        ],
        culprit="queries-errors-by-code",
    ),
    Case(
        "saved-queries-declared",
        "a stack with an Athena workgroup but without one of the named queries",
        [_workgroup(ENCRYPTED_WORKGROUP), *_named_queries(skip="spend-by-user-model-tier")],
        [_workgroup(ENCRYPTED_WORKGROUP), *_named_queries()],
    ),
    Case(
        "saved-queries-declared",
        "an Athena named query without its database",
        [_workgroup(ENCRYPTED_WORKGROUP), *_named_queries(database="")],
        culprit="query-spend-by-tier",
    ),
]


# --- SnapStart: invoked through a published version --------------------------------------------

SNAPSTART_ARN = "arn:aws:lambda:us-east-1:123456789012:function:chat"
DATA_SOURCE = "aws:appsync/dataSource:DataSource"


def _snapstart_chat(**changes) -> FixtureResource:
    props = function(**{"snapStart": {"applyOn": "PublishedVersions"}, "publish": True, **changes})
    return resource(FUNCTION, "chat", props, arn=SNAPSTART_ARN)


def _chat_source(target: str) -> FixtureResource:
    props = {
        "apiId": "abcdefghijklmnopqrstuvwxyz",
        "name": "chat_function",
        "type": "AWS_LAMBDA",
        "lambdaConfig": {"functionArn": target},
    }
    return resource(DATA_SOURCE, "chat-source", props)


CASES += [
    Case(
        "lambda-snapstart-invoked-through-versions",
        "the Event API's handler invokes a SnapStart function unqualified ($LATEST)",
        [_snapstart_chat(), _chat_source(SNAPSTART_ARN)],
        [_snapstart_chat(), _chat_source(f"{SNAPSTART_ARN}:live")],
        culprit="chat-source",
    ),
    Case(
        "lambda-snapstart-invoked-through-versions",
        "a SnapStart function that publishes no version",
        [_snapstart_chat(publish=False), _chat_source(f"{SNAPSTART_ARN}:live")],
        culprit="chat",
    ),
]


def _pack_policies() -> set[str]:
    return {p.name for p in run([]).policies}


def test_every_policy_has_a_failing_fixture():
    assert _pack_policies() - {case.policy for case in CASES} == set()


def test_the_pack_has_at_least_twelve_policies_with_stack_policies_among_them():
    policies = run([]).policies
    assert len(policies) >= 12
    assert {p.kind for p in policies} == {"resource", "stack"}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_violating_fixture_is_reported_under_its_policy(case: Case):
    found = assert_stack_has_violation(
        case.policy, case.violating, environment=case.environment, config=case.config
    )
    if case.culprit is None:
        assert all(v.urn == "" for v in found), "a stack-wide violation names no resource"
    else:
        assert case.culprit in {v.resource_name for v in found}


@pytest.mark.parametrize("case", [c for c in CASES if c.compliant], ids=str)
def test_compliant_counterpart_passes_the_policy(case: Case):
    assert_stack_no_violations(
        case.policy, case.compliant, environment=case.environment, config=case.config
    )


@pytest.mark.parametrize(
    ("policy", "resources"),
    [
        (
            "prod-data-protected",
            [resource(TABLE, "usage", table(pointInTimeRecovery={"enabled": False}))],
        ),
        (
            "cognito-mfa-in-prod",
            [resource(USER_POOL, "users", user_pool(mfaConfiguration="OPTIONAL"))],
        ),
        ("prod-alarms-notify", [alarm("errors", [])]),
        ("prod-event-api-waf", [event_api()]),
        ("prod-rest-api-waf", [rest_stage()]),
        ("prod-cloudfront-access-logs", [distribution()]),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_production_policies_leave_other_environments_alone(policy, resources):
    assert_stack_no_violations(policy, resources, environment="dev")


def test_production_is_the_providers_environment_not_the_resources_own_tag():
    # GIVEN a prod stack whose table claims, by its own tag, to be dev
    pool = resource(
        USER_POOL, "users", user_pool(mfaConfiguration="OFF", tags={"environment": "dev"})
    )
    # THEN the prod rules still apply
    assert_stack_has_violation("cognito-mfa-in-prod", [pool], environment="prod")


def test_a_bucket_guarded_in_every_way_passes_every_bucket_policy():
    result = run(bucket_stack(**COMPLIANT_BUCKET))
    assert not [v for v in result.violations if v.policy.startswith("s3-")]


def test_tls_statement_must_deny_every_principal():
    scoped = {**TLS_ONLY_STATEMENT, "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}
    stack = bucket_stack(block={}, policy=document(scoped))
    assert_stack_has_violation("s3-tls-only", stack)


def test_tls_statement_must_deny_every_action():
    narrow = {**TLS_ONLY_STATEMENT, "Action": "s3:GetObject"}
    assert_stack_has_violation("s3-tls-only", bucket_stack(block={}, policy=document(narrow)))


def test_tls_condition_may_be_a_list():
    listed = {**TLS_ONLY_STATEMENT, "Condition": {"Bool": {"aws:SecureTransport": ["false"]}}}
    assert_stack_no_violations("s3-tls-only", bucket_stack(block={}, policy=document(listed)))


def test_alarm_in_production_needs_no_topic_of_this_stack_if_it_notifies_sns():
    shared = "arn:aws:sns:us-east-1:123456789012:org-on-call"
    assert_stack_no_violations(
        "prod-alarms-notify", [alarm("errors", [shared])], environment="prod"
    )


def test_non_sns_alarm_action_does_not_count_as_a_notification():
    autoscaling = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x"
    found = assert_stack_has_violation(
        "prod-alarms-notify", [alarm("errors", [autoscaling])], environment="prod"
    )
    assert {v.resource_name for v in found} == {"errors"}


def test_messages_name_what_to_change():
    found = assert_stack_has_violation(
        "lambda-python-runtime", [resource(FUNCTION, "chat", function(runtime="python3.9"))]
    )
    assert "python3.9" in found[0].message and "python3.13" in found[0].message


def _pulumi_aws_class(token: str):
    module, _, name = token.split(":", 1)[1].partition(":")
    package = module.split("/")[0]
    package = {"lambda": "lambda_"}.get(package, package)
    return getattr(importlib.import_module(f"pulumi_aws.{package}"), name, None)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "token",
    sorted({r.type for c in CASES for r in [*c.violating, *(c.compliant or [])]}),
)
def test_fixtures_use_real_pulumi_aws_type_tokens(token: str):
    # A mistyped token would make a compliant counterpart pass vacuously.
    cls = _pulumi_aws_class(token)
    assert cls is not None and cls.pulumi_type == token


def test_legacy_logging_config_counts_as_access_logs_in_production():
    logged = distribution(loggingConfig={"bucket": "logs.s3.amazonaws.com", "prefix": "web/"})
    assert_stack_no_violations("prod-cloudfront-access-logs", [logged], environment="prod")


def test_the_default_certificate_passes_minimum_tls_whatever_it_asks():
    # CloudFront fixes the security policy of its own certificate; there is nothing to choose.
    default = distribution(
        viewerCertificate={"cloudfrontDefaultCertificate": True, "minimumProtocolVersion": "TLSv1"}
    )
    assert_stack_no_violations("cloudfront-minimum-tls", [default])


def test_a_custom_origin_that_is_not_s3_needs_no_origin_access_control():
    api = {
        "originId": "api",
        "domainName": "api.example.com",
        "customOriginConfig": {"originProtocolPolicy": "https-only"},
    }
    assert_stack_no_violations(
        "cloudfront-s3-origin-access-control", [distribution(origins=[s3_origin(), api])]
    )


def test_a_short_hsts_max_age_is_reported():
    short = headers_policy(strictTransportSecurity={"accessControlMaxAgeSec": 300})
    found = assert_stack_has_violation("cloudfront-response-headers", [distribution(), short])
    assert "max-age" in found[0].message
