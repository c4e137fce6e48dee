"""Each policy catches a break in the resources the program really declares.

The fixtures elsewhere are written by hand; here the prod stack's own resources are taken as
``devtools.declare`` reports them, one property is broken, and the pack must name the policy.
This keeps the policies honest about the property names and shapes the components produce.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from devtools.declare import declare_stack
from policy.offline import analyze, load_config_file

Props = dict[str, Any]

# Declaring a stack imports pulumi_aws, whose deprecated aliases warn on import.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _document(props: Props, change: Callable[[list[dict]], None]) -> Props:
    doc = json.loads(props["policy"])
    change(doc["Statement"])
    return {**props, "policy": json.dumps(doc)}


def _set(path: str, value: Any) -> Callable[[Props], Props]:
    def change(props: Props) -> Props:
        props = copy.deepcopy(props)
        *parents, leaf = path.split(".")
        node = props
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
        return props

    return change


def _namespace(name: str, key: str, modes: list[str]) -> Callable[[Props], Props]:
    def change(props: Props) -> Props:
        if props.get("name") != name:
            return props
        return {**props, key: [{"authType": m} for m in modes]}

    return change


def _unqualified(props: Props) -> Props:
    """The chat data source invoking its function's unqualified ARN instead of the alias."""
    arn = props["lambdaConfig"]["functionArn"]
    if not arn.endswith(":live"):
        return props
    return {**props, "lambdaConfig": {**props["lambdaConfig"], "functionArn": arn[: -len(":live")]}}


# (policy, resource type to break, how) - a None change drops the resource(s) from the stack.
BREAKS: list[tuple[str, str, Callable[[Props], Props] | None]] = [
    ("dynamodb-table-encrypted", "aws:dynamodb/table:Table", _set("serverSideEncryption", None)),
    (
        "firehose-stream-encrypted",
        "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
        _set("serverSideEncryption.enabled", False),
    ),
    ("sns-topic-encrypted", "aws:sns/topic:Topic", _set("kmsMasterKeyId", None)),
    (
        "athena-workgroup-encrypted",
        "aws:athena/workgroup:Workgroup",
        _set("configuration.resultConfiguration.encryptionConfiguration", None),
    ),
    (
        "s3-bucket-encrypted",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        None,
    ),
    (
        "s3-public-access-blocked",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        _set("restrictPublicBuckets", False),
    ),
    (
        "s3-tls-only",
        "aws:s3/bucketPolicy:BucketPolicy",
        lambda p: _document(p, lambda s: s.__setitem__(slice(None), [])),
    ),
    ("prod-data-protected", "aws:dynamodb/table:Table", _set("deletionProtectionEnabled", False)),
    ("lambda-python-runtime", "aws:lambda/function:Function", _set("runtime", "python3.9")),
    ("lambda-arm64", "aws:lambda/function:Function", _set("architectures", ["x86_64"])),
    ("lambda-xray-tracing", "aws:lambda/function:Function", _set("tracingConfig", None)),
    (
        "lambda-snapstart-invoked-through-versions",
        "aws:appsync/dataSource:DataSource",
        _unqualified,
    ),
    ("log-group-retention", "aws:cloudwatch/logGroup:LogGroup", _set("retentionInDays", 0)),
    ("lambda-log-group", "aws:cloudwatch/logGroup:LogGroup", None),
    (
        "iam-no-wildcard-actions",
        "aws:iam/rolePolicy:RolePolicy",
        lambda p: _document(p, lambda s: s[0].__setitem__("Action", ["dynamodb:*"])),
    ),
    (
        "iam-no-wildcard-resources",
        "aws:iam/rolePolicy:RolePolicy",
        lambda p: _document(
            p,
            lambda s: s.append({"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}),
        ),
    ),
    (
        "cognito-password-policy",
        "aws:cognito/userPool:UserPool",
        _set("passwordPolicy.minimumLength", 8),
    ),
    ("cognito-mfa-in-prod", "aws:cognito/userPool:UserPool", _set("mfaConfiguration", "OPTIONAL")),
    (
        "cognito-public-client",
        "aws:cognito/userPoolClient:UserPoolClient",
        _set("generateSecret", True),
    ),
    ("appsync-event-api-logging", "aws:appsync/api:Api", _set("eventConfig.logConfig", None)),
    (
        "appsync-outbound-publish-iam-only",
        "aws:appsync/channelNamespace:ChannelNamespace",
        _namespace("replies", "publishAuthModes", ["AWS_IAM", "AMAZON_COGNITO_USER_POOLS"]),
    ),
    (
        "appsync-inbound-not-subscribable",
        "aws:appsync/channelNamespace:ChannelNamespace",
        _namespace("chat", "subscribeAuthModes", ["AMAZON_COGNITO_USER_POOLS"]),
    ),
    (
        "models-in-catalog",
        "aws:ssm/parameter:Parameter",
        lambda p: {**p, "value": p["value"].replace("amazon.nova-micro-v1:0", "ai21.jamba-1-5")},
    ),
    (
        "required-tags",
        "aws:dynamodb/table:Table",
        lambda p: _set("tagsAll.cost-center", "")(_set("tags.cost-center", "")(p)),
    ),
    ("prod-alarms-notify", "aws:cloudwatch/metricAlarm:MetricAlarm", _set("alarmActions", [])),
    ("prod-event-api-waf", "aws:wafv2/webAclAssociation:WebAclAssociation", None),
    (
        "cloudfront-s3-origin-access-control",
        "aws:cloudfront/distribution:Distribution",
        lambda p: {**p, "origins": [{**o, "originAccessControlId": ""} for o in p["origins"]]},
    ),
    (
        "cloudfront-viewer-https",
        "aws:cloudfront/distribution:Distribution",
        _set("defaultCacheBehavior.viewerProtocolPolicy", "allow-all"),
    ),
    (
        "cloudfront-minimum-tls",
        "aws:cloudfront/distribution:Distribution",
        _set(
            "viewerCertificate",
            {
                "acmCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/"
                "0f0e0d0c-1b1a-2c2b-3d3c-4e4d4c4b4a49",
                "sslSupportMethod": "sni-only",
                "minimumProtocolVersion": "TLSv1.1_2016",
            },
        ),
    ),
    (
        "cloudfront-response-headers",
        "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy",
        _set("securityHeadersConfig.strictTransportSecurity", None),
    ),
    ("prod-cloudfront-access-logs", "aws:cloudwatch/logDelivery:LogDelivery", None),
    (
        "cognito-machine-client",
        "aws:cognito/userPoolClient:UserPoolClient",
        _set("allowedOauthFlows", ["client_credentials", "code"]),
    ),
    (
        "apigateway-lambda-integrations-streamed",
        "aws:apigateway/integration:Integration",
        _set("responseTransferMode", "BUFFERED"),
    ),
    (
        "apigateway-methods-authorized",
        "aws:apigateway/method:Method",
        _set("authorization", "NONE"),
    ),
    (
        "apigateway-stage-throttled-and-logged",
        "aws:apigateway/methodSettings:MethodSettings",
        None,
    ),
    ("prod-rest-api-waf", "aws:wafv2/webAclAssociation:WebAclAssociation", None),
    (
        "saved-queries-declared",
        "aws:cloudwatch/queryDefinition:QueryDefinition",
        _set("logGroupNames", []),
    ),
]


def test_every_policy_is_broken_once_against_the_real_stack():
    policies = {p.name for p in analyze([], stack="prod", config=load_config_file()).policies}
    assert {policy for policy, _, _ in BREAKS} == policies


@pytest.mark.parametrize(("policy", "type_", "change"), BREAKS, ids=[b[0] for b in BREAKS])
def test_breaking_a_declared_resource_is_reported(policy, type_, change):
    resources = declare_stack("prod").resources
    assert any(r.type == type_ for r in resources), f"prod declares no {type_}"
    if change is None:
        broken = [r for r in resources if r.type != type_]
    else:
        broken = [
            dataclasses.replace(r, inputs=change(dict(r.inputs)), outputs=change(dict(r.outputs)))
            if r.type == type_
            else r
            for r in resources
        ]
    result = analyze(broken, stack="prod", config=load_config_file())
    assert result.of_policy(policy), f"{policy} missed the break of {type_}"
