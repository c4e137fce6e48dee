"""Access logs of the chat app's distribution: CloudFront standard logging (v2) into a private,
expiring S3 bucket of the stack.

v2 logging is delivered by CloudWatch Logs' vended-log service, which writes with a bucket policy
(the ``delivery.logs.amazonaws.com`` principal, pinned to this account's log deliveries) - so the
bucket keeps ACLs disabled, unlike standard logging (legacy), which needs ACLs enabled on it
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging-legacy-s3.html).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.private_bucket import create_private_bucket, declare_tls_only_policy

#: CloudFront is a global service managed from us-east-1; its log delivery source, destination
#: and delivery are declared there whatever the stack's region
#: (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging.html).
DELIVERY_REGION = "us-east-1"
LOG_PREFIX = "AWSLogs/"


def delivery_grants(bucket_arn: str, account: str) -> list[dict[str, Any]]:
    """The statements vended-log delivery needs on the bucket, limited to this account's
    deliveries (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-infrastructure-V2-S3.html)."""
    conditions = {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnLike": {"aws:SourceArn": f"arn:aws:logs:{DELIVERY_REGION}:{account}:*"},
    }
    return [
        {
            "Sid": "AWSLogDeliveryWrite",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/{LOG_PREFIX}{account}/*",
            "Condition": {
                **conditions,
                "StringEquals": {
                    "aws:SourceAccount": account,
                    "s3:x-amz-acl": "bucket-owner-full-control",
                },
            },
        },
        {
            "Sid": "AWSLogDeliveryAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
            "Resource": bucket_arn,
            "Condition": conditions,
        },
    ]


def delivery_name(stack_prefix: str) -> str:
    """The name of the distribution's log delivery source and destination (one of each kind per
    stack; the two kinds have separate namespaces): ``ai-gateway-<stack>-web-logs``, within the
    60 characters PutDeliverySource and PutDeliveryDestination allow for any accepted stack name
    (botocore's CloudWatch Logs model: ``DeliverySourceName``, ``DeliveryDestinationName``)."""
    return f"{stack_prefix}-web-logs"


class AccessLogs:
    """The log bucket, its policy, and the delivery source, destination and delivery."""

    bucket: aws.s3.Bucket
    source: aws.cloudwatch.LogDeliverySource
    destination: aws.cloudwatch.LogDeliveryDestination
    delivery: aws.cloudwatch.LogDelivery

    def __init__(
        self,
        name: str,
        *,
        distribution: aws.cloudfront.Distribution,
        retention_days: int,
        retain: bool,
        parent: pulumi.Resource,
        prefix: str,
    ) -> None:
        """``prefix``: the stack's ``ai-gateway-<stack>``, which short names start with."""
        child = pulumi.ResourceOptions(parent=parent)
        self.bucket = create_private_bucket(
            name,
            bucket_name=f"{prefix}-access-logs",
            expire_days_by_prefix={LOG_PREFIX: retention_days},
            retain=retain,
            parent=parent,
            declare_policy=False,
        )
        # arn:aws:cloudfront::<account>:distribution/<id> names the account
        grants = pulumi.Output.all(self.bucket.arn, distribution.arn).apply(
            lambda arns: delivery_grants(arns[0], arns[1].split(":")[4])
        )
        policy = declare_tls_only_policy(name, self.bucket, parent=parent, grants=grants)
        # Explicit names: AWS allows at most 60 characters for both, and pulumi-aws would
        # auto-name them from the (longer) logical names without shortening (components/naming.py).
        self.source = aws.cloudwatch.LogDeliverySource(
            f"{name}-source",
            name=delivery_name(prefix),
            log_type="ACCESS_LOGS",
            resource_arn=distribution.arn,
            region=DELIVERY_REGION,
            opts=child,
        )
        self.destination = aws.cloudwatch.LogDeliveryDestination(
            f"{name}-destination",
            name=delivery_name(prefix),
            output_format="json",
            delivery_destination_configuration={"destination_resource_arn": self.bucket.arn},
            region=DELIVERY_REGION,
            opts=child,
        )
        self.delivery = aws.cloudwatch.LogDelivery(
            f"{name}-delivery",
            delivery_source_name=self.source.name,
            delivery_destination_arn=self.destination.arn,
            region=DELIVERY_REGION,
            # The delivery checks it may write before it is created.
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[policy]),
        )
