"""DynamoDB tables declared from the key schemas the function code owns (``gateway.schema``)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
from gateway.schema import TableSchema


def create_table(
    name: str,
    schema: TableSchema,
    *,
    point_in_time_recovery: bool,
    deletion_protection: bool,
    parent: pulumi.Resource,
) -> aws.dynamodb.Table:
    """An on-demand, encrypted table with TTL, keyed exactly as ``schema`` says.

    Encryption uses the AWS-managed ``aws/dynamodb`` KMS key, so it is auditable in CloudTrail
    without a key to administer.
    """
    return aws.dynamodb.Table(
        name,
        billing_mode="PAY_PER_REQUEST",
        hash_key=schema.partition_key,
        range_key=schema.sort_key,
        attributes=[
            {"name": a["AttributeName"], "type": a["AttributeType"]}
            for a in schema.attribute_definitions
        ],
        ttl={"attribute_name": schema.ttl_attribute, "enabled": True},
        server_side_encryption={"enabled": True},
        point_in_time_recovery={"enabled": point_in_time_recovery},
        deletion_protection_enabled=deletion_protection,
        opts=pulumi.ResourceOptions(parent=parent),
    )
