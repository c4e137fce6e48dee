"""Per-turn analytics: Firehose -> Parquet in S3, described by Glue, queried with Athena."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import analytics_schema as schema
from components import iam
from components.naming import renamed, stack_prefix
from components.private_bucket import create_private_bucket

_GLUE_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass
class AnalyticsArgs:
    """Inputs of :class:`AnalyticsComponent`."""

    #: Glue database name (lowercase letters, digits and '_'), e.g. ``ai_gateway_dev``.
    database_name: str
    #: Days the bucket keeps per-turn records.
    retention_days: int = 365
    #: Keep the bucket and its data when the stack is destroyed (and refuse a forced delete).
    retain_data: bool = True
    log_retention_days: int = 30
    query_results_retention_days: int = 30

    def __post_init__(self) -> None:
        if not self.database_name or set(self.database_name) - _GLUE_NAME_CHARS:
            raise ValueError(
                f"AnalyticsArgs.database_name: {self.database_name!r} must be lowercase letters, "
                "digits and '_'"
            )


class AnalyticsComponent(pulumi.ComponentResource):
    """A private, encrypted bucket; a Glue table with date partition projection (no crawler);
    a Firehose stream that converts the chat function's JSON records to Parquet with that table;
    and an Athena workgroup with an enforced, encrypted results location and named queries."""

    bucket: aws.s3.Bucket
    database: aws.glue.CatalogDatabase
    table: aws.glue.CatalogTable
    stream: aws.kinesis.FirehoseDeliveryStream
    workgroup: aws.athena.Workgroup
    queries: dict[str, aws.athena.NamedQuery]

    def __init__(
        self, name: str, args: AnalyticsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:index:Analytics", name, None, opts)
        self._name = name
        self.bucket = create_private_bucket(
            name,
            bucket_name=f"{stack_prefix(name)}-analytics",
            expire_days_by_prefix={
                schema.RECORDS_PREFIX: args.retention_days,
                schema.ERRORS_PREFIX: args.retention_days,
                schema.QUERY_RESULTS_PREFIX: args.query_results_retention_days,
            },
            retain=args.retain_data,
            parent=self,
        )
        self.database, self.table = self._create_catalog(args)
        self.stream = self._create_stream(args)
        self.workgroup = self._create_workgroup(args)
        self.queries = self._create_named_queries(args)
        self.register_outputs(
            {
                "bucketName": self.bucket.bucket,
                "databaseName": self.database.name,
                "tableName": self.table.name,
                "streamName": self.stream.name,
                "streamArn": self.stream.arn,
                "workgroupName": self.workgroup.name,
            }
        )

    def _child(self, **extra: object) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **extra)  # type: ignore[arg-type]

    def _create_catalog(
        self, args: AnalyticsArgs
    ) -> tuple[aws.glue.CatalogDatabase, aws.glue.CatalogTable]:
        database = aws.glue.CatalogDatabase(
            f"{self._name}-database",
            name=args.database_name,
            description="ai-gateway per-turn analytics",
            opts=self._child(),
        )
        location = self.bucket.bucket.apply(lambda b: f"s3://{b}/{schema.RECORDS_PREFIX}")
        dt, dt_type = schema.PARTITION_COLUMN
        table = aws.glue.CatalogTable(
            f"{self._name}-turns",
            name=schema.TABLE_NAME,
            database_name=database.name,
            table_type="EXTERNAL_TABLE",
            description="One row per chat turn (written by the chat function through Firehose)",
            parameters=location.apply(
                lambda loc: {
                    "EXTERNAL": "TRUE",
                    "classification": "parquet",
                    "parquet.compression": "SNAPPY",
                    # Partition projection: Athena computes dt partitions, no crawler or MSCK.
                    "projection.enabled": "true",
                    f"projection.{dt}.type": "date",
                    f"projection.{dt}.format": schema.PARTITION_DATE_FORMAT,
                    f"projection.{dt}.range": f"{schema.PARTITION_RANGE_START},NOW",
                    f"projection.{dt}.interval": "1",
                    f"projection.{dt}.interval.unit": "DAYS",
                    "storage.location.template": f"{loc}{dt}=${{{dt}}}/",
                }
            ),
            partition_keys=[{"name": dt, "type": dt_type}],
            storage_descriptor={
                "location": location,
                "input_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "output_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "ser_de_info": {
                    "serialization_library": (
                        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    ),
                    "parameters": {"serialization.format": "1"},
                },
                "columns": [{"name": c, "type": t} for c, t in schema.TURN_COLUMNS],
            },
            opts=self._child(),
        )
        return database, table

    def _create_stream(self, args: AnalyticsArgs) -> aws.kinesis.FirehoseDeliveryStream:
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-delivery-logs",
            retention_in_days=args.log_retention_days,
            opts=self._child(),
        )
        log_stream = aws.cloudwatch.LogStream(
            f"{self._name}-delivery-log-stream",
            name="DestinationDelivery",
            log_group_name=log_group.name,
            opts=self._child(),
        )
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        role = aws.iam.Role(
            f"{stack_prefix(self._name)}-firehose-role",
            description="Firehose: write analytics Parquet to S3, read the Glue schema",
            # Firehose documents its delivery-role trust with the account id as sts:ExternalId
            # (https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html#using-iam-s3,
            # "This ensures that only you can request Firehose to assume the IAM role").
            assume_role_policy=identity.account_id.apply(
                lambda account: iam.trust("firehose.amazonaws.com", external_id=account)
            ),
            opts=renamed(f"{self._name}-delivery-role", parent=self),
        )
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))
        policy = aws.iam.RolePolicy(
            f"{self._name}-delivery-policy",
            role=role.id,
            policy=pulumi.Output.all(
                bucket=self.bucket.arn,
                region=region.region,
                account=identity.account_id,
                database=self.database.name,
                table=self.table.name,
                log_group=log_group.arn,
            ).apply(lambda v: _delivery_policy(**v)),
            opts=self._child(),
        )
        return aws.kinesis.FirehoseDeliveryStream(
            f"{stack_prefix(self._name)}-turns-stream",
            destination="extended_s3",
            server_side_encryption={"enabled": True, "key_type": "AWS_OWNED_CMK"},
            extended_s3_configuration={
                "role_arn": role.arn,
                "bucket_arn": self.bucket.arn,
                "prefix": schema.FIREHOSE_PREFIX,
                "error_output_prefix": schema.FIREHOSE_ERROR_PREFIX,
                # Parquet conversion needs at least a 64 MiB buffer; the interval bounds latency.
                "buffering_size": 64,
                "buffering_interval": 300,
                "compression_format": "UNCOMPRESSED",  # Parquet pages are Snappy-compressed
                "cloudwatch_logging_options": {
                    "enabled": True,
                    "log_group_name": log_group.name,
                    "log_stream_name": log_stream.name,
                },
                "data_format_conversion_configuration": {
                    "enabled": True,
                    "input_format_configuration": {
                        "deserializer": {
                            "hive_json_ser_de": {
                                "timestamp_formats": list(schema.TIMESTAMP_FORMATS)
                            }
                        }
                    },
                    "output_format_configuration": {
                        "serializer": {"parquet_ser_de": {"compression": "SNAPPY"}}
                    },
                    "schema_configuration": {
                        "database_name": self.database.name,
                        "table_name": self.table.name,
                        "role_arn": role.arn,
                    },
                },
            },
            opts=renamed(f"{self._name}-turns-stream", parent=self, depends_on=[policy]),
        )

    def _create_workgroup(self, args: AnalyticsArgs) -> aws.athena.Workgroup:
        return aws.athena.Workgroup(
            f"{self._name}-workgroup",
            description="ai-gateway analytics queries",
            force_destroy=not args.retain_data,
            configuration={
                # Queries cannot choose another (unencrypted) results location.
                "enforce_workgroup_configuration": True,
                "publish_cloudwatch_metrics_enabled": True,
                "bytes_scanned_cutoff_per_query": 10 * 1024**3,
                "result_configuration": {
                    "output_location": self.bucket.bucket.apply(
                        lambda b: f"s3://{b}/{schema.QUERY_RESULTS_PREFIX}"
                    ),
                    "encryption_configuration": {"encryption_option": "SSE_S3"},
                },
            },
            opts=self._child(),
        )

    def _create_named_queries(self, args: AnalyticsArgs) -> dict[str, aws.athena.NamedQuery]:
        return {
            key: aws.athena.NamedQuery(
                f"{self._name}-query-{key}",
                name=key,
                description=description,
                database=self.database.name,
                workgroup=self.workgroup.name,
                query=sql,
                opts=self._child(),
            )
            for key, (description, sql) in schema.named_queries(args.database_name).items()
        }


def _delivery_policy(
    bucket: str, region: str, account: str, database: str, table: str, log_group: str
) -> str:
    glue = f"arn:aws:glue:{region}:{account}"
    return iam.document(
        iam.allow(
            "WriteRecords",
            [
                "s3:AbortMultipartUpload",
                "s3:GetBucketLocation",
                "s3:GetObject",
                "s3:ListBucket",
                "s3:ListBucketMultipartUploads",
                "s3:PutObject",
            ],
            [bucket, f"{bucket}/*"],
        ),
        iam.allow(
            "ReadSchema",
            ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
            [f"{glue}:catalog", f"{glue}:database/{database}", f"{glue}:table/{database}/{table}"],
        ),
        iam.allow("DeliveryErrorLogs", ["logs:PutLogEvents"], [f"{log_group}:*"]),
    )
