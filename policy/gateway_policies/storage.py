"""Data at rest: tables, buckets, streams, topics and query results are encrypted; buckets are
private and TLS-only; production data survives a mistaken delete."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._props import (
    PRODUCTION_ONLY,
    UNKNOWN,
    allows,
    as_list,
    get,
    is_production,
    maybe,
    of_type,
    policy_statements,
    refers_to,
)

TABLE = "aws:dynamodb/table:Table"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
FIREHOSE = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
TOPIC = "aws:sns/topic:Topic"
WORKGROUP = "aws:athena/workgroup:Workgroup"
USER_POOL = "aws:cognito/userPool:UserPool"

_PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
# What a companion resource's `bucket` may equal: the bucket's id, which is its name.
_BUCKET_KEYS = ("bucket", "id")


def _dynamodb_table_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != TABLE:
        return
    if get(args.props, "serverSideEncryption", "enabled") is not True:
        report_violation(
            "Set serverSideEncryption.enabled = true so the table is encrypted with a KMS key "
            "whose every use is recorded in CloudTrail (the default AWS-owned key is not)."
        )


dynamodb_table_encrypted = ResourceValidationPolicy(
    name="dynamodb-table-encrypted",
    description="DynamoDB tables are encrypted at rest with a KMS key (AWS managed or customer "
    "managed), not the invisible AWS-owned default.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_dynamodb_table_encrypted,
)


def _firehose_stream_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != FIREHOSE:
        return
    if get(args.props, "serverSideEncryption", "enabled") is not True:
        report_violation(
            "Set serverSideEncryption.enabled = true: per-turn analytics records (user ids, "
            "token counts) must be encrypted while Firehose buffers them."
        )


firehose_stream_encrypted = ResourceValidationPolicy(
    name="firehose-stream-encrypted",
    description="Firehose delivery streams encrypt buffered records at rest (server-side "
    "encryption enabled).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_firehose_stream_encrypted,
)


def _sns_topic_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != TOPIC:
        return
    if not get(args.props, "kmsMasterKeyId"):
        report_violation(
            "Set kmsMasterKeyId (for example 'alias/aws/sns') so alarm notifications are "
            "encrypted at rest."
        )


sns_topic_encrypted = ResourceValidationPolicy(
    name="sns-topic-encrypted",
    description="SNS topics encrypt messages at rest with a KMS key.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_sns_topic_encrypted,
)


def _athena_workgroup_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != WORKGROUP:
        return
    configuration = get(args.props, "configuration", default={})
    option = get(
        configuration, "resultConfiguration", "encryptionConfiguration", "encryptionOption"
    )
    if option not in ("SSE_S3", "SSE_KMS", "CSE_KMS"):
        report_violation(
            "Set configuration.resultConfiguration.encryptionConfiguration.encryptionOption "
            "(SSE_S3, SSE_KMS or CSE_KMS): query results hold per-user usage."
        )
    if get(configuration, "enforceWorkgroupConfiguration") is not True:
        report_violation(
            "Set configuration.enforceWorkgroupConfiguration = true so a query cannot override "
            "the workgroup's encrypted result location."
        )


athena_workgroup_encrypted = ResourceValidationPolicy(
    name="athena-workgroup-encrypted",
    description="Athena workgroups encrypt query results and enforce that setting on every query.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_athena_workgroup_encrypted,
)


def _prod_data_protected(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type not in (TABLE, USER_POOL, *BUCKETS):
        return
    if not is_production(args, args.get_config()):
        return
    props = args.props
    if args.resource_type == TABLE:
        if get(props, "pointInTimeRecovery", "enabled") is not True:
            report_violation("Enable pointInTimeRecovery: a production table must be restorable.")
        if get(props, "deletionProtectionEnabled") is not True:
            report_violation("Set deletionProtectionEnabled = true on a production table.")
    elif args.resource_type == USER_POOL:
        if get(props, "deletionProtection") != "ACTIVE":
            report_violation(
                "Set deletionProtection = 'ACTIVE': deleting a production user pool deletes "
                "every account in it."
            )
    elif get(props, "forceDestroy") is True:
        report_violation("Remove forceDestroy: it lets a delete wipe a production bucket's data.")


prod_data_protected = ResourceValidationPolicy(
    name="prod-data-protected",
    description="In production, tables have point-in-time recovery and deletion protection, user "
    "pools have deletion protection, and no bucket can be force-destroyed.",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PRODUCTION_ONLY,
    validate=_prod_data_protected,
)


def _buckets_with(args: StackValidationArgs, companion_types: tuple[str, ...]):
    """Each bucket with the companion resources (public access block, policy...) aimed at it."""
    companions = of_type(args.resources, *companion_types)
    for bucket in of_type(args.resources, *BUCKETS):
        yield bucket, [c for c in companions if refers_to(c, "bucket", bucket, _BUCKET_KEYS)]


def _s3_public_access_blocked(args: StackValidationArgs, report_violation: ReportViolation):
    for bucket, blocks in _buckets_with(args, (PUBLIC_ACCESS_BLOCK,)):
        if not blocks:
            report_violation(
                f"Bucket '{bucket.name}' has no BucketPublicAccessBlock; declare one with all "
                "four settings true.",
                bucket.urn,
            )
            continue
        for block in blocks:
            off = [f for f in _PUBLIC_ACCESS_FLAGS if maybe(block.props, f) not in (True, UNKNOWN)]
            if off:
                report_violation(
                    f"Bucket '{bucket.name}': public access block '{block.name}' does not set "
                    f"{', '.join(off)} to true.",
                    block.urn,
                )


s3_public_access_blocked = StackValidationPolicy(
    name="s3-public-access-blocked",
    description="Every S3 bucket has a public access block with all four settings on (no public "
    "ACLs, no public policies).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_s3_public_access_blocked,
)


def _denies_insecure_transport(document: object) -> bool:
    """A Deny of every S3 action, for every principal, when the request is not over TLS."""
    for statement in policy_statements(document):
        if allows(statement):
            continue
        secure = maybe(statement, "Condition", "Bool", "aws:SecureTransport")
        insecure_only = any(str(v).lower() == "false" for v in as_list(secure, lenient=True))
        everyone = maybe(statement, "Principal") in ("*", {"AWS": "*"})
        every_action = {"*", "s3:*"} & {str(a) for a in as_list(maybe(statement, "Action"))}
        if insecure_only and everyone and every_action:
            return True
    return False


def _s3_tls_only(args: StackValidationArgs, report_violation: ReportViolation):
    for bucket, policies in _buckets_with(args, (BUCKET_POLICY,)):
        documents = [maybe(p.props, "policy") for p in policies]
        if any(d is UNKNOWN for d in documents):
            continue  # known only after deployment; `pulumi up` checks it again
        if not any(_denies_insecure_transport(d) for d in documents):
            report_violation(
                f"Bucket '{bucket.name}' needs a bucket policy that denies every principal when "
                "aws:SecureTransport is false.",
                bucket.urn,
            )


s3_tls_only = StackValidationPolicy(
    name="s3-tls-only",
    description="Every S3 bucket has a bucket policy denying requests that do not use TLS "
    "(aws:SecureTransport = false).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_s3_tls_only,
)


def _sse_algorithms(bucket_props: object, configs: list) -> list:
    inline = maybe(bucket_props, "serverSideEncryptionConfiguration", "rule")
    rules = as_list(inline, lenient=True)
    for config in configs:
        rules += as_list(maybe(config.props, "rules"), lenient=True)
    return [maybe(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm") for rule in rules]


def _s3_bucket_encrypted(args: StackValidationArgs, report_violation: ReportViolation):
    allowed = set(args.get_config().get("sseAlgorithms") or ())
    for bucket, configs in _buckets_with(args, BUCKET_SSE):
        algorithms = _sse_algorithms(bucket.props, configs)
        if UNKNOWN in algorithms:
            continue
        if not any(a in allowed for a in algorithms):
            found = ", ".join(map(str, algorithms)) or "none"
            report_violation(
                f"Bucket '{bucket.name}' declares no default encryption with one of "
                f"{', '.join(sorted(allowed))} (found: {found}); add a "
                "BucketServerSideEncryptionConfiguration.",
                bucket.urn,
            )


s3_bucket_encrypted = StackValidationPolicy(
    name="s3-bucket-encrypted",
    description="Every S3 bucket declares default server-side encryption with an approved "
    "algorithm.",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "sseAlgorithms": {
                "type": "array",
                "items": {"type": "string", "enum": ["aws:kms", "aws:kms:dsse", "AES256"]},
                "description": "Server-side encryption algorithms a bucket may default to.",
                "default": ["aws:kms", "aws:kms:dsse", "AES256"],
            }
        }
    ),
    validate=_s3_bucket_encrypted,
)

POLICIES = [
    dynamodb_table_encrypted,
    firehose_stream_encrypted,
    sns_topic_encrypted,
    athena_workgroup_encrypted,
    s3_bucket_encrypted,
    s3_public_access_blocked,
    s3_tls_only,
    prod_data_protected,
]
