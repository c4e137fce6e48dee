"""A private S3 bucket: no public access, owner-enforced objects, encrypted, TLS only, expiring."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components import iam
from components.naming import renamed


def create_private_bucket(
    name: str,
    *,
    expire_days_by_prefix: Mapping[str, int],
    retain: bool,
    parent: pulumi.Resource,
    declare_policy: bool = True,
    bucket_name: str | None = None,
) -> aws.s3.Bucket:
    """A bucket nobody outside the account can reach, with SSE-S3 by default, a policy refusing
    plain HTTP, and objects under each prefix expiring after the given days.

    ``retain`` keeps the bucket (and its data) on ``pulumi destroy`` and refuses a forced delete.
    With ``declare_policy=False`` the caller declares the policy later, with
    :func:`declare_tls_only_policy`, once it knows what else to grant (S3 keeps one policy per
    bucket).
    """
    child = pulumi.ResourceOptions(parent=parent)
    # ``bucket_name``: a shorter logical name for the bucket itself, whose physical name (63
    # characters at most) derives from it; the old one stays an alias (components/naming.py).
    bucket = aws.s3.Bucket(
        bucket_name or f"{name}-bucket",
        force_destroy=not retain,
        opts=renamed(f"{name}-bucket", parent=parent, retain_on_delete=retain)
        if bucket_name
        else pulumi.ResourceOptions(parent=parent, retain_on_delete=retain),
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-bucket-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-bucket-ownership",
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=child,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-bucket-encryption",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                "bucket_key_enabled": True,
            }
        ],
        opts=child,
    )
    if expire_days_by_prefix:
        _expire(name, bucket, expire_days_by_prefix, child)
    if declare_policy:
        declare_tls_only_policy(name, bucket, parent=parent)
    return bucket


def declare_tls_only_policy(
    name: str,
    bucket: aws.s3.Bucket,
    *,
    parent: pulumi.Resource,
    grants: pulumi.Input[Sequence[dict[str, Any]]] | None = None,
) -> aws.s3.BucketPolicy:
    """The bucket's policy: refuse plain HTTP, then allow ``grants`` (statements, or an Output
    of them, for the AWS service that reads or writes the bucket)."""
    policy = pulumi.Output.all(bucket.arn, grants or []).apply(
        lambda values: iam.deny_insecure_transport(values[0], *values[1])
    )
    return aws.s3.BucketPolicy(
        f"{name}-bucket-tls-only",
        bucket=bucket.id,
        policy=policy,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _expire(
    name: str,
    bucket: aws.s3.Bucket,
    expire_days_by_prefix: Mapping[str, int],
    opts: pulumi.ResourceOptions,
) -> None:
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-bucket-lifecycle",
        bucket=bucket.id,
        rules=[
            {
                "id": prefix.strip("/"),
                "status": "Enabled",
                "filter": {"prefix": prefix},
                "expiration": {"days": days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }
            for prefix, days in expire_days_by_prefix.items()
        ],
        opts=opts,
    )
