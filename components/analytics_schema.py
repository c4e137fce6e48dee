"""The per-turn analytics record: one row per chat turn, as Glue, Firehose and Athena see it.

The chat function writes one JSON object per turn to the Firehose stream with exactly these keys
(snake_case). Firehose converts it to Parquet with the Glue table declared from
``gateway.schema.TURN_COLUMNS``, so a key missing there is silently dropped and a type mismatch
fails the record into the ``errors/`` prefix. ``ts`` is UTC as ``2025-01-31 12:00:00.123`` (what
``gateway.telemetry.record_timestamp`` writes); ISO-8601 with a zone and epoch milliseconds also
parse.
"""

from __future__ import annotations

from gateway.schema import TURN_COLUMNS  # noqa: F401  (the record's columns, owned by the functions)

#: The date partition: derived by Firehose from the arrival time, projected by Athena.
PARTITION_COLUMN = ("dt", "string")
PARTITION_DATE_FORMAT = "yyyy-MM-dd"
#: First day partition projection considers; queries never scan before it.
PARTITION_RANGE_START = "2025-01-01"

TABLE_NAME = "turns"
#: S3 key prefixes inside the analytics bucket.
RECORDS_PREFIX = "turns/"
FIREHOSE_PREFIX = "turns/dt=!{timestamp:yyyy-MM-dd}/"
ERRORS_PREFIX = "errors/"
FIREHOSE_ERROR_PREFIX = "errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
QUERY_RESULTS_PREFIX = "athena-results/"

#: How Firehose's Hive JSON deserializer reads ``ts`` (Joda-Time patterns, or epoch millis).
TIMESTAMP_FORMATS = ("yyyy-MM-dd HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm:ss.SSSZZ", "millis")


def named_queries(database: str) -> dict[str, tuple[str, str]]:
    """Athena named queries over the turns table: key -> (description, SQL).

    The SQL keeps to what Athena (Trino) and DuckDB both run, so
    ``tests/functions/test_saved_queries.py`` runs each over records real turns wrote; the one
    exception, Trino's ``date_format``, is given to DuckDB there as a macro over ``strftime``.
    """
    table = f'"{database}"."{TABLE_NAME}"'
    last_30_days = "dt >= date_format(current_date - interval '30' day, '%Y-%m-%d')"
    return {
        "tokens-by-model": (
            "Input, output and cache tokens per model and day, last 30 days",
            f"SELECT dt, model_id, count(*) AS turns, sum(input_tokens) AS input_tokens,\n"
            f"       sum(output_tokens) AS output_tokens,\n"
            f"       sum(cache_read_tokens) AS cache_read_tokens,\n"
            f"       sum(cache_write_tokens) AS cache_write_tokens\n"
            f"FROM {table}\nWHERE {last_30_days}\n"
            f"GROUP BY dt, model_id\nORDER BY dt DESC, output_tokens DESC",
        ),
        "top-users-by-tokens": (
            "The 50 users who spent the most tokens in the last 30 days",
            f"SELECT user_id, tier, count(*) AS turns, sum(input_tokens) AS input_tokens,\n"
            f"       sum(output_tokens) AS output_tokens,\n"
            f"       sum(input_tokens + output_tokens) AS total_tokens\n"
            f"FROM {table}\nWHERE {last_30_days}\n"
            f"GROUP BY user_id, tier\nORDER BY total_tokens DESC\nLIMIT 50",
        ),
        "daily-active-users": (
            "Distinct users with at least one turn, per day and tier, last 30 days",
            f"SELECT dt, tier, count(DISTINCT user_id) AS active_users, count(*) AS turns\n"
            f"FROM {table}\nWHERE {last_30_days}\n"
            f"GROUP BY dt, tier\nORDER BY dt DESC, tier",
        ),
        "spend-by-user-model-tier": (
            "Usage (turns, tokens) and spend in US dollars per day, user, model and tier, "
            "last 30 days (list prices)",
            f"SELECT dt, user_id, model_id, tier, count(*) AS turns,\n"
            f"       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,\n"
            f"       sum(cache_read_tokens) AS cache_read_tokens,\n"
            f"       sum(cache_write_tokens) AS cache_write_tokens,\n"
            f"       round(sum(cost_usd), 6) AS spend_usd\n"
            f"FROM {table}\nWHERE {last_30_days}\n"
            f"GROUP BY dt, user_id, model_id, tier\nORDER BY dt DESC, spend_usd DESC",
        ),
        "spend-by-model": (
            "Spend in US dollars per day and model, last 30 days (list prices)",
            f"SELECT dt, model_id, count(*) AS turns, round(sum(cost_usd), 6) AS spend_usd\n"
            f"FROM {table}\nWHERE {last_30_days}\n"
            f"GROUP BY dt, model_id\nORDER BY dt DESC, spend_usd DESC",
        ),
        "spend-by-tier": (
            "Spend in US dollars per day and tier, with its users, last 30 days (list prices)",
            f"SELECT dt, tier, count(DISTINCT user_id) AS users, count(*) AS turns,\n"
            f"       round(sum(cost_usd), 6) AS spend_usd\n"
            f"FROM {table}\nWHERE {last_30_days}\n"
            f"GROUP BY dt, tier\nORDER BY dt DESC, spend_usd DESC",
        ),
        "cache-hit-rate": (
            "Share of turns that ended without error served from prepared responses, per day",
            f"SELECT dt, count(*) AS turns,\n"
            f"       count_if(cached) AS cache_hits,\n"
            f"       round(100.0 * count_if(cached) / count(*), 2) AS cache_hit_percent\n"
            f"FROM {table}\nWHERE {last_30_days} AND coalesce(error_code, '') = ''\n"
            f"GROUP BY dt\nORDER BY dt DESC",
        ),
    }
