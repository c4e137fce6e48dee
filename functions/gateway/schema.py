"""Key schemas of the gateway's DynamoDB tables.

The components declare the tables from these definitions and the local runtime creates them in
moto from the same ones, so the key names the code reads are the key names that exist.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSchema:
    """A table with a string partition key, an optional string sort key and a TTL attribute."""

    partition_key: str
    ttl_attribute: str
    sort_key: str | None = None

    @property
    def attribute_definitions(self) -> list[dict[str, str]]:
        keys = [self.partition_key] + ([self.sort_key] if self.sort_key else [])
        return [{"AttributeName": k, "AttributeType": "S"} for k in keys]

    @property
    def key_schema(self) -> list[dict[str, str]]:
        schema = [{"AttributeName": self.partition_key, "KeyType": "HASH"}]
        if self.sort_key:
            schema.append({"AttributeName": self.sort_key, "KeyType": "RANGE"})
        return schema


#: The partition key and TTL attribute every gateway table uses.
PARTITION_KEY = "pk"
TTL_ATTRIBUTE = "expiresAt"

#: One item per user holding 10-minute buckets, month totals and live reservations (plus the
#: short-lived stop items of ``gateway.stop``).
USAGE_TABLE = TableSchema(partition_key=PARTITION_KEY, ttl_attribute=TTL_ATTRIBUTE)

#: One item per prepared response, keyed by model scope and normalised-prompt hash.
PREPARED_RESPONSES_TABLE = TableSchema(partition_key=PARTITION_KEY, ttl_attribute=TTL_ATTRIBUTE)


def usage_key(sub: str) -> str:
    """The partition key of one user's usage item."""
    return f"user#{sub}"


#: The per-turn analytics record (``gateway.telemetry.TurnRecord``) as the Glue table sees it:
#: (column, Hive type) in table order. Firehose drops keys the table lacks, so the two must agree.
TURN_COLUMNS: tuple[tuple[str, str], ...] = (
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
)
