"""AnalyticsComponent: bucket, Glue table, Firehose to Parquet, Athena workgroup and queries."""

from __future__ import annotations

from datetime import datetime

from infra_support import ROLE, component, grants, statements

from components import analytics_schema

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
DATABASE = "aws:glue/catalogDatabase:CatalogDatabase"
GLUE_TABLE = "aws:glue/catalogTable:CatalogTable"
CRAWLER = "aws:glue/crawler:Crawler"
FIREHOSE = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
WORKGROUP = "aws:athena/workgroup:Workgroup"
NAMED_QUERY = "aws:athena/namedQuery:NamedQuery"

EXPECTED_COLUMNS = [
    ("turn_id", "string"),
    ("conversation_id", "string"),
    ("user_id", "string"),
    ("tier", "string"),
    ("model_id", "string"),
    ("outcome", "string"),
    ("error_code", "string"),
    ("cached", "boolean"),
    ("input_tokens", "bigint"),
    ("output_tokens", "bigint"),
    ("cache_read_tokens", "bigint"),
    ("cache_write_tokens", "bigint"),
    ("latency_ms", "bigint"),
    ("first_token_ms", "bigint"),
    ("events_published", "int"),
    ("ts", "timestamp"),
    ("overrun_input_tokens", "bigint"),
    ("overrun_output_tokens", "bigint"),
    ("speculative_cancelled", "int"),
    ("speculative_input_tokens", "bigint"),
    ("cost_usd", "double"),
    ("door", "string"),
]


def _one(stack, type_):
    """The one resource of ``type_`` that belongs to the analytics component (the stack has
    other buckets)."""
    analytics = component(stack, "Analytics").urn
    (found,) = [r for r in stack.children_of(analytics) if r.type == type_]
    return found


def _bucket_name(stack):
    return _one(stack, BUCKET).outputs["bucket"]


def _conversion(stack):
    return _one(stack, FIREHOSE).inputs["extendedS3Configuration"][
        "dataFormatConversionConfiguration"
    ]


def test_bucket_blocks_every_kind_of_public_access(stack):
    block = _one(stack, PUBLIC_ACCESS).inputs
    assert block["bucket"] == _bucket_name(stack)
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[flag] is True, flag


def test_bucket_is_encrypted_at_rest(stack):
    (rule,) = _one(stack, SSE).inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    assert _one(stack, SSE).inputs["bucket"] == _bucket_name(stack)


def test_bucket_refuses_requests_without_tls(stack):
    (statement,) = statements(_one(stack, BUCKET_POLICY))
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_records_expire_after_the_configured_retention(stack):
    rules = {r["id"]: r for r in _one(stack, LIFECYCLE).inputs["rules"]}
    assert rules["turns"]["filter"]["prefix"] == "turns/"
    assert rules["turns"]["expiration"]["days"] == stack.config["ai-gateway:analyticsRetentionDays"]
    assert rules["athena-results"]["filter"]["prefix"] == "athena-results/"


def test_prod_keeps_analytics_data_when_the_stack_goes_away(prod):
    assert _one(prod, BUCKET).inputs["forceDestroy"] is False
    assert _one(prod, WORKGROUP).inputs["forceDestroy"] is False


def test_dev_analytics_data_can_be_destroyed(dev):
    assert _one(dev, BUCKET).inputs["forceDestroy"] is True


def test_glue_table_has_the_turn_record_columns_in_order(stack):
    columns = _one(stack, GLUE_TABLE).inputs["storageDescriptor"]["columns"]
    assert [(c["name"], c["type"]) for c in columns] == EXPECTED_COLUMNS
    assert list(analytics_schema.TURN_COLUMNS) == EXPECTED_COLUMNS


def test_glue_table_is_parquet_in_the_bucket(stack):
    table = _one(stack, GLUE_TABLE).inputs
    descriptor = table["storageDescriptor"]
    assert descriptor["location"] == f"s3://{_bucket_name(stack)}/turns/"
    assert descriptor["inputFormat"].endswith("MapredParquetInputFormat")
    assert descriptor["serDeInfo"]["serializationLibrary"].endswith("ParquetHiveSerDe")
    assert table["tableType"] == "EXTERNAL_TABLE"


def test_glue_table_projects_daily_partitions_without_a_crawler(stack):
    table = _one(stack, GLUE_TABLE).inputs
    assert table["partitionKeys"] == [{"name": "dt", "type": "string"}]
    parameters = table["parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.dt.type"] == "date"
    assert parameters["projection.dt.format"] == "yyyy-MM-dd"
    assert (
        parameters["storage.location.template"] == f"s3://{_bucket_name(stack)}/turns/dt=${{dt}}/"
    )
    assert stack.of_type(CRAWLER) == []


def test_firehose_writes_date_partitions_the_table_projects(stack):
    s3 = _one(stack, FIREHOSE).inputs["extendedS3Configuration"]
    assert _one(stack, FIREHOSE).inputs["destination"] == "extended_s3"
    assert s3["prefix"] == "turns/dt=!{timestamp:yyyy-MM-dd}/"
    assert s3["errorOutputPrefix"].startswith("errors/")
    assert s3["bucketArn"] == _one(stack, BUCKET).outputs["arn"]


def test_firehose_converts_json_to_parquet_with_the_glue_table(stack):
    conversion = _conversion(stack)
    assert conversion["enabled"] is True
    assert "hiveJsonSerDe" in conversion["inputFormatConfiguration"]["deserializer"]
    assert "parquetSerDe" in conversion["outputFormatConfiguration"]["serializer"]
    schema = conversion["schemaConfiguration"]
    assert schema["databaseName"] == _one(stack, DATABASE).inputs["name"]
    assert schema["tableName"] == _one(stack, GLUE_TABLE).inputs["name"]


def test_firehose_parses_the_timestamps_the_chat_function_writes(stack):
    from gateway.telemetry import record_timestamp

    formats = _conversion(stack)["inputFormatConfiguration"]["deserializer"]["hiveJsonSerDe"][
        "timestampFormats"
    ]
    # GIVEN the timestamp format the chat function writes ("2023-11-14 22:13:20.123")
    written = record_timestamp(1_700_000_000.123)
    assert datetime.strptime(written, "%Y-%m-%d %H:%M:%S.%f")
    # THEN Firehose knows its Joda-Time equivalent
    assert "yyyy-MM-dd HH:mm:ss.SSS" in formats


def test_firehose_encrypts_buffered_records(stack):
    assert _one(stack, FIREHOSE).inputs["serverSideEncryption"]["enabled"] is True


def test_firehose_role_writes_only_its_bucket_and_reads_only_its_table(stack):
    role_arn = _one(stack, FIREHOSE).inputs["extendedS3Configuration"]["roleArn"]
    role = next(r for r in stack.of_type(ROLE) if r.outputs["arn"] == role_arn)
    allowed = grants(stack, role)
    bucket = _one(stack, BUCKET).outputs["arn"]
    assert allowed["s3:PutObject"] == {bucket, f"{bucket}/*"}
    table = _one(stack, GLUE_TABLE).outputs["arn"]
    assert table in allowed["glue:GetTable"]
    assert {a.split(":")[0] for a in allowed} == {"s3", "glue", "logs"}


def test_firehose_role_trusts_firehose_for_this_account_as_firehose_documents(stack):
    role_arn = stack.one(FIREHOSE).inputs["extendedS3Configuration"]["roleArn"]
    role = next(r for r in stack.of_type(ROLE) if r.outputs["arn"] == role_arn)
    (trust,) = statements(role, "assumeRolePolicy")
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": "123456789012"}}


def test_athena_workgroup_enforces_an_encrypted_results_location(stack):
    configuration = _one(stack, WORKGROUP).inputs["configuration"]
    assert configuration["enforceWorkgroupConfiguration"] is True
    results = configuration["resultConfiguration"]
    assert results["outputLocation"] == f"s3://{_bucket_name(stack)}/athena-results/"
    assert results["encryptionConfiguration"]["encryptionOption"] == "SSE_S3"


def test_named_queries_answer_the_product_and_spend_questions(stack):
    queries = {q.inputs["name"]: q.inputs for q in stack.of_type(NAMED_QUERY)}
    assert set(queries) == {
        "tokens-by-model",
        "top-users-by-tokens",
        "daily-active-users",
        "cache-hit-rate",
        "spend-by-user-model-tier",
        "spend-by-model",
        "spend-by-tier",
    }
    for name in ("spend-by-user-model-tier", "spend-by-model", "spend-by-tier"):
        assert "sum(cost_usd)" in queries[name]["query"], name
    database = _one(stack, DATABASE).inputs["name"]
    workgroup = _one(stack, WORKGROUP).outputs["name"]
    for name, query in queries.items():
        assert query["database"] == database, name
        assert query["workgroup"] == workgroup, name
        assert f'"{database}"."turns"' in query["query"], name
        assert "dt >=" in query["query"], f"{name} scans every partition"


def test_analytics_children_are_parented_to_the_analytics_component(dev):
    analytics = component(dev, "Analytics")
    for resource_type in (DATABASE, GLUE_TABLE, FIREHOSE, WORKGROUP, NAMED_QUERY):
        assert all(r.parent == analytics.urn for r in dev.of_type(resource_type)), resource_type
    bucket = _one(dev, BUCKET)
    assert bucket.parent == analytics.urn
    # Shortened (it once was f"{analytics.name}-bucket", kept as an alias): S3 allows 63
    # characters for the auto-name at the longest stack name accepted (test_name_limits.py).
    assert bucket.name == "ai-gateway-dev-analytics"
