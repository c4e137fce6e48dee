"""Every physical name fits AWS's limit for the longest stack name the program accepts.

A stack named ``customer-facing-prod-eu-west-1`` (30 characters, ``settings.MAX_STACK_NAME_LENGTH``)
is declared from the prod stack file, the one with the most resources (WAF, access logs, alarms),
and each name - explicit, or auto-named by the mocks as Pulumi does (logical name, ``-`` and 7
random hex characters; ``components/naming.py``) - is checked against the table below. Each limit
is read back from botocore's service model where the model states it, so the table cannot drift
from the API; the others cite the page that states them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import botocore.session
import pytest

from components.naming import AUTONAME_SUFFIX_LENGTH
from devtools.declare import declare_stack
from settings import MAX_STACK_NAME_LENGTH, SettingsError

LONG_STACK = "customer-facing-prod-eu-west-1"
S3_RULES = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html"


@dataclass(frozen=True)
class Limit:
    """A name's most characters, and where AWS says so: a botocore shape's ``max`` (``shape``),
    or a sentence of an operation member's documentation (``says``), or a page (``url``)."""

    chars: int
    service: str = ""
    shape: str = ""
    operation: str = ""
    member: tuple[str, ...] = ()
    says: str = ""
    url: str = ""


#: Types whose name length AWS does not state (each held to a stated stand-in, with a comment).
UNSTATED = {
    "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy",
    "aws:apigateway/restApi:RestApi",
    "aws:apigateway/authorizer:Authorizer",
}

#: Resource type -> (the property holding its physical name, its limit).
LIMITS: dict[str, tuple[str, Limit]] = {
    "aws:lambda/function:Function": (
        "name",
        Limit(64, "lambda", operation="CreateFunction", member=("FunctionName",),
              says="limited to 64 characters"),
    ),
    "aws:iam/role:Role": ("name", Limit(64, "iam", "roleNameType")),
    "aws:iam/rolePolicy:RolePolicy": ("name", Limit(128, "iam", "policyNameType")),
    "aws:cloudwatch/logGroup:LogGroup": ("name", Limit(512, "logs", "LogGroupName")),
    "aws:cloudwatch/logStream:LogStream": ("name", Limit(512, "logs", "LogStreamName")),
    "aws:cloudwatch/logDeliverySource:LogDeliverySource": (
        "name",
        Limit(60, "logs", "DeliverySourceName"),
    ),
    "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination": (
        "name",
        Limit(60, "logs", "DeliveryDestinationName"),
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", Limit(255, "cloudwatch", "AlarmName")),
    "aws:cloudwatch/queryDefinition:QueryDefinition": (
        "name",
        Limit(255, "logs", "QueryDefinitionName"),
    ),
    "aws:cloudwatch/dashboard:Dashboard": (
        "dashboardName",
        Limit(255, "cloudwatch", operation="PutDashboard", member=("DashboardName",),
              says="The maximum length is 255"),
    ),
    "aws:dynamodb/table:Table": ("name", Limit(255, "dynamodb", "TableName")),
    "aws:s3/bucket:Bucket": (
        "bucket",
        Limit(63, url=S3_RULES, says="Bucket names must be between 3 (min) and 63 (max)"),
    ),
    "aws:ssm/parameter:Parameter": ("name", Limit(2048, "ssm", "PSParameterName")),
    "aws:cognito/userPool:UserPool": ("name", Limit(128, "cognito-idp", "UserPoolNameType")),
    "aws:cognito/userPoolClient:UserPoolClient": (
        "name",
        Limit(128, "cognito-idp", "ClientNameType"),
    ),
    "aws:cognito/userGroup:UserGroup": ("name", Limit(128, "cognito-idp", "GroupNameType")),
    "aws:appsync/api:Api": ("name", Limit(50, "appsync", "ApiName")),
    "aws:appsync/channelNamespace:ChannelNamespace": ("name", Limit(50, "appsync", "Namespace")),
    "aws:appsync/dataSource:DataSource": ("name", Limit(65536, "appsync", "ResourceName")),
    "aws:wafv2/webAcl:WebAcl": ("name", Limit(128, "wafv2", "EntityName")),
    "aws:cloudfront/function:Function": ("name", Limit(64, "cloudfront", "FunctionName")),
    "aws:cloudfront/originAccessControl:OriginAccessControl": (
        "name",
        Limit(64, "cloudfront", operation="CreateOriginAccessControl",
              member=("OriginAccessControlConfig", "Name"), says="up to 64 characters"),
    ),
    # CloudFront's model and API reference state no length for a response headers policy's
    # name; it is held to 64, the limit CloudFront states for its other named objects above.
    "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy": ("name", Limit(64)),
    # Neither botocore's API Gateway model (CreateRestApi's and CreateAuthorizer's ``name`` is a
    # plain String) nor the REST API quotas page
    # (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html)
    # states a length: held to 128, the longest the other services above allow a name.
    "aws:apigateway/restApi:RestApi": ("name", Limit(128)),
    "aws:apigateway/authorizer:Authorizer": ("name", Limit(128)),
    "aws:lambda/alias:Alias": ("name", Limit(128, "lambda", "Alias")),
    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": (
        "name",
        Limit(64, "firehose", "DeliveryStreamName"),
    ),
    "aws:glue/catalogDatabase:CatalogDatabase": ("name", Limit(255, "glue", "NameString")),
    "aws:glue/catalogTable:CatalogTable": ("name", Limit(255, "glue", "NameString")),
    "aws:athena/workgroup:Workgroup": (
        "name",
        Limit(128, "athena", operation="CreateWorkGroup", member=("Name",)),
    ),
    "aws:athena/namedQuery:NamedQuery": ("name", Limit(128, "athena", "NameString")),
    "aws:sns/topic:Topic": (
        "name",
        Limit(256, "sns", operation="CreateTopic", member=("Name",),
              says="between 1 and 256 characters long"),
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def long_stack():
    assert len(LONG_STACK) == MAX_STACK_NAME_LENGTH
    return declare_stack(LONG_STACK, config_of="prod")


def _names(stack):
    """(type, logical name, physical name) of every named resource the stack declares."""
    for resource in stack.resources:
        if not resource.custom:
            continue
        prop = LIMITS.get(resource.type, ("name", None))[0]
        value = resource.outputs.get(prop)
        if isinstance(value, str):
            yield resource.type, resource.name, value


def test_every_named_resource_type_has_a_limit(long_stack):
    unknown = sorted({kind for kind, _, _ in _names(long_stack)} - set(LIMITS))
    assert unknown == [], f"add AWS's name limit of {unknown} to LIMITS"


def test_every_name_of_the_longest_accepted_stack_fits_aws_limits(long_stack):
    too_long = [
        f"{kind} {name!r}: {len(name)} > {LIMITS[kind][1].chars}"
        for kind, _, name in _names(long_stack)
        if len(name) > LIMITS[kind][1].chars
    ]
    assert too_long == []


def test_the_log_delivery_names_are_explicit_and_fit(long_stack):
    for kind in (
        "aws:cloudwatch/logDeliverySource:LogDeliverySource",
        "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination",
    ):
        declared = long_stack.one(kind)
        assert declared.inputs["name"] == f"ai-gateway-{LONG_STACK}-web-logs"
        assert len(declared.inputs["name"]) <= 60


def test_the_mocks_auto_name_as_pulumi_does(long_stack):
    # pulumi-terraform-bridge AutoName: the logical name, "-" and 7 random hex characters.
    role = next(r for r in long_stack.of_type("aws:iam/role:Role") if "subscribe" in r.name)
    assert "name" not in role.inputs
    assert re.fullmatch(re.escape(role.name) + r"-[0-9a-f]{7}", role.outputs["name"])
    assert len(role.outputs["name"]) - len(role.name) == AUTONAME_SUFFIX_LENGTH


def test_a_longer_stack_name_is_refused_naming_the_limit():
    name = LONG_STACK + "x"
    with pytest.raises(SettingsError, match=r"is 31 characters; at most 30 fit AWS's name limits"):
        declare_stack(name, config_of="prod")


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_each_limit_is_what_aws_states(kind):
    limit = LIMITS[kind][1]
    if not limit.service:
        assert limit.url or kind in UNSTATED, f"{kind}: cite the limit"
        return
    model = botocore.session.get_session().get_service_model(limit.service)
    if limit.shape:
        assert model.shape_for(limit.shape).metadata["max"] == limit.chars
        return
    shape = model.operation_model(limit.operation).input_shape
    for member in limit.member:
        shape = shape.members[member]
    stated = shape.metadata.get("max")
    pattern = re.search(r"\{1,(\d+)\}", shape.metadata.get("pattern", ""))
    if limit.says:
        assert limit.says in re.sub(r"<[^>]+>", "", shape.documentation)
    elif stated is not None:
        assert stated == limit.chars
    else:
        assert pattern is not None and int(pattern[1]) == limit.chars
