"""The stacks' saved queries fit what the functions really write.

Real turns run through the real handlers - the chat function's (a streamed answer, a refusal, a
model failure) and the OpenAI door's HTTP server - on moto, with the Firehose analytics adapter
writing to a moto delivery stream that lands each record in S3, and with the functions' own
Powertools loggers captured. Then:

- every field each saved Logs Insights query names is a key of the ``turn finished`` lines both
  doors log (Logs Insights discovers a JSON line's keys as fields, nested keys joined by dots);
- each Athena named query's SQL runs in DuckDB over those records, in a table shaped like the
  Glue table, and its answer is checked.

DuckDB and Athena (Trino) share the SQL these queries use (``SELECT``/``GROUP BY``/``ORDER BY``,
``count(DISTINCT ...)``, ``count_if``, ``coalesce``, ``round``, ``current_date - interval '30'
day``, quoted ``"database"."table"``); Trino's ``date_format(timestamp, format)`` is the one
function DuckDB lacks, given here as a macro over DuckDB's ``strftime``, which reads the one
format the queries use (``%Y-%m-%d``) the same way.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import chat
import duckdb
import openai_http
import pytest
from gateway.contract import ErrorCode
from gateway.openai.wire import WireLimits
from gateway.runtime import Runtime
from gateway.schema import TURN_COLUMNS
from gateway.usage_store import DynamoTurnStore

from components.analytics_schema import PARTITION_COLUMN, TABLE_NAME, named_queries
from components.log_queries import FAULT_CODES, LOG_QUERIES, REFUSAL_CODES, TURN_FINISHED
from tests.functions.support import (
    OTHER_SUB,
    SUB,
    Gateway,
    RecordedAnalytics,
    RecordingEndpoint,
    ScriptedModel,
    StaticTiers,
    chat_payload,
    create_tables,
    function_environment,
    tier_config,
)

STREAM, BUCKET, DATABASE = "turns", "analytics", "ai_gateway_test"
PRICES = {"inputPer1k": 0.5, "outputPer1k": 2.0}  # US dollars per 1,000 tokens, for the test
# The scripted model answers every turn with 11 input and 4 output tokens.
INPUT, OUTPUT = 11, 4
TURN_COST = (INPUT * PRICES["inputPer1k"] + OUTPUT * PRICES["outputPer1k"]) / 1000


@dataclass
class Produced:
    """What the turns left behind: the functions' log lines and the records Firehose got."""

    log_lines: list[dict[str, Any]]
    records: list[dict[str, Any]]

    def finished(self, door: str) -> list[dict[str, Any]]:
        return [
            line
            for line in self.log_lines
            if line.get("message") == TURN_FINISHED and line.get("door") == door
        ]


@pytest.fixture(scope="module")
def produced() -> Iterator[Produced]:
    """Five turns: two answers for one free user and one for a pro user on the chat channel, a
    refusal, a model failure, and one answer through the OpenAI door."""
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as env, mock_aws(), _captured_logs() as buffer:
        # What the package's autouse fixture gives each test, for this module's one stage.
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_METRICS_NAMESPACE": "AiGateway",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }.items():
            env.setenv(name, value)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("firehose", region_name="us-east-1").create_delivery_stream(
            DeliveryStreamName=STREAM,
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": f"arn:aws:s3:::{BUCKET}",
                "Prefix": "turns/",
            },
        )
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb)
        tiers = StaticTiers(tier_config(prices=PRICES))
        endpoint = RecordingEndpoint()
        try:
            _chat_turns(endpoint, dynamodb, tiers)
        finally:
            endpoint.close()
        _openai_turn(dynamodb, tiers)
        records = [
            json.loads(line)
            for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]
            for line in s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().splitlines()
        ]
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    yield Produced(lines, records)


class _captured_logs:  # noqa: N801 - used as a context manager
    """Point the functions' Powertools loggers (the chat handler's and the OpenAI door's) at a
    buffer, formatter and all, and back."""

    def __enter__(self) -> io.StringIO:
        self.buffer = io.StringIO()
        self.handlers = {
            id(h): h for h in (chat.logger.registered_handler, _door_log().registered_handler)
        }
        self.streams = [(h, h.setStream(self.buffer)) for h in self.handlers.values()]
        return self.buffer

    def __exit__(self, *exc: object) -> None:
        for handler, stream in self.streams:
            handler.setStream(stream)


def _door_log() -> Any:
    return openai_http.turn_log()


def _chat_turns(endpoint: RecordingEndpoint, dynamodb: Any, tiers: StaticTiers) -> None:
    env = function_environment(events_http_endpoint=endpoint.url, analytics_stream=STREAM)
    model = ScriptedModel(fail_before=ErrorCode.MODEL_ERROR, fail_models={"amazon.nova-lite-v1:0"})
    gateway = Gateway(endpoint, dynamodb, None, model, RecordedAnalytics(), env, tiers)  # type: ignore[arg-type]
    handler = gateway.handler(analytics=None)  # the runtime's own Firehose adapter
    from tests.functions.support import publish_event
    from tests.support.appsync import lambda_context

    def turn(sub: str, groups: list[str] | None, **payload: Any) -> None:
        handler(publish_event(chat_payload(**payload), sub=sub, groups=groups), lambda_context())

    turn(SUB, None, conversationId="c-1", turnId="t-1")
    turn(SUB, None, conversationId="c-2", turnId="t-2")
    turn(OTHER_SUB, ["pro"], conversationId="c-3", turnId="t-3")
    # free may not use the pro model: refused
    turn(SUB, None, conversationId="c-4", turnId="t-4", modelId="amazon.nova-pro-v1:0")
    # the model fails before answering: a gateway-side error
    turn(SUB, None, conversationId="c-5", turnId="t-5", modelId="amazon.nova-lite-v1:0")


def _openai_turn(dynamodb: Any, tiers: StaticTiers) -> None:
    env = function_environment(analytics_stream=STREAM)
    runtime = Runtime(
        env,
        tiers=tiers,
        store=DynamoTurnStore(lambda: dynamodb, "usage", "prepared"),
        provider=ScriptedModel(),
        log=_door_log(),
    )
    door = runtime.openai_door({})
    httpd = openai_http.serve(door, WireLimits(max_messages=4, max_message_chars=100), port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        claims = {"sub": SUB, "username": "someone", "client_id": "web", "cognito:groups": "free"}
        context = json.dumps({"requestId": "req-1", "authorizer": {"claims": claims}})
        body = {"model": "amazon.nova-micro-v1:0", "messages": [{"role": "user", "content": "Hi"}]}
        connection = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=10)
        connection.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                openai_http.REQUEST_CONTEXT_HEADER: context,
            },
        )
        response = connection.getresponse()
        assert response.status == 200, response.read()
        response.read()
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- Logs Insights: the fields each query names ---------------------------------------------------

_KEYWORDS = {
    "fields", "filter", "stats", "sort", "limit", "display", "by", "as", "and", "or", "not",
    "in", "like", "asc", "desc",
}  # fmt: skip


def query_fields(query: str) -> set[str]:
    """The log fields a Logs Insights query reads: every identifier but the commands and
    operators, the functions it calls, the aliases it defines (``as name``), the system fields
    (``@...``) and the literals (strings, numbers, durations such as ``5m``)."""
    text = "\n".join(line for line in query.splitlines() if not line.lstrip().startswith("#"))
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', " ", text)
    aliases = set(re.findall(r"\bas\s+([A-Za-z_][\w.]*)", text))
    fields = set()
    for match in re.finditer(r"(?<![\w@.])([A-Za-z_][\w.]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS or name in aliases:
            continue
        fields.add(name)
    return fields


def flattened_keys(line: dict[str, Any], prefix: str = "") -> set[str]:
    """A JSON line's keys as Logs Insights names them: nested keys joined with dots."""
    keys = set()
    for key, value in line.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= flattened_keys(value, f"{prefix}{key}.")
    return keys


def test_the_field_reader_finds_fields_and_skips_functions_aliases_and_literals():
    query = (
        "# a comment naming nothing\n"
        'filter message = "turn finished" and error_code in ["rate_limited"]\n'
        "| fields input_tokens + output_tokens as tokens\n"
        "| stats sum(tokens) as total, pct(first_token_ms, 95) as p95 by user, bin(5m)\n"
        "| sort total desc | limit 10"
    )
    assert query_fields(query) == {
        "message",
        "error_code",
        "input_tokens",
        "output_tokens",
        "first_token_ms",
        "user",
    }


@pytest.mark.parametrize("door", ["events", "openai"])
def test_each_door_logs_one_finished_line_per_turn(produced: Produced, door: str):
    turns = {"events": 5, "openai": 1}[door]
    assert len(produced.finished(door)) == turns


_FILTER_TERM = re.compile(
    r"^(?:ispresent\((?P<present>[\w.]+)\)"
    r'|(?P<field>[\w.]+)\s*=\s*"(?P<value>[^"]*)"'
    r"|(?P<member>[\w.]+)\s+in\s+(?P<values>\[[^\]]*\]))$"
)


def selects(query: str, line: dict[str, Any]) -> bool:
    """Whether the query's ``filter`` keeps ``line``: the subset of Logs Insights the saved
    queries use (terms joined by ``and``: ``field = "text"``, ``field in [...]``,
    ``ispresent(field)``). Anything else fails loudly, so a new query extends this first."""
    commands = [command.strip() for command in query.split("|")]
    for clause in (c[len("filter ") :] for c in commands if c.startswith("filter ")):
        for term in clause.split(" and "):
            match = _FILTER_TERM.match(term.strip())
            assert match, f"the test's filter reader does not know {term!r}"
            if match["present"]:
                keep = match["present"] in flattened_keys(line)
            elif match["field"]:
                keep = line.get(match["field"]) == match["value"]
            else:
                keep = line.get(match["member"]) in json.loads(match["values"])
            if not keep:
                return False
    return True


def selected(produced: Produced, key: str) -> list[dict[str, Any]]:
    query = LOG_QUERIES[key].query
    return [line for line in produced.log_lines if selects(query, line)]


@pytest.mark.parametrize("key", sorted(LOG_QUERIES))
def test_every_field_a_saved_query_names_is_on_every_line_it_selects(produced: Produced, key: str):
    lines = selected(produced, key)
    assert lines, f"{key} selects none of the lines the turns logged"
    fields = query_fields(LOG_QUERIES[key].query)
    for line in lines:
        missing = fields - flattened_keys(line)
        assert not missing, f"{key} reads {sorted(missing)}, absent from {line}"


def test_the_queries_select_the_turns_they_are_about(produced: Produced):
    def turns(key: str) -> list[tuple[str, str]]:
        return sorted((line["door"], line["turn"]) for line in selected(produced, key))

    every_turn = turns("unique-users-per-5-minutes")
    assert len(every_turn) == 6 and turns("top-users-by-tokens") == every_turn
    assert turns("errors-by-code") == [("events", "t-5")]
    assert turns("refusals-by-reason-and-tier") == [("events", "t-4")]
    answered = turns("first-token-latency-by-model")
    assert [t for _, t in answered if t.startswith("t-")] == ["t-1", "t-2", "t-3"]
    assert [door for door, _ in answered] == ["events"] * 3 + ["openai"]
    # The OpenAI door has no conversations (each request carries its whole history).
    assert {door for door, _ in turns("users-with-most-conversations")} == {"events"}


def test_a_query_naming_a_field_nobody_logs_is_caught(produced: Produced):
    fields = query_fields(f'filter message = "{TURN_FINISHED}" | stats count(*) by usr')
    assert fields - flattened_keys(produced.finished("events")[0]) == {"usr"}


def test_refusals_and_faults_split_every_error_code():
    refusals, faults = set(REFUSAL_CODES), set(FAULT_CODES)
    assert refusals.isdisjoint(faults)
    assert refusals | faults == set(ErrorCode), "classify the new error code in log_queries.py"


def test_the_refused_turn_is_logged_with_a_refusal_code_and_its_tier(produced: Produced):
    refused = [line for line in produced.finished("events") if line["turn"] == "t-4"]
    assert [(r["error_code"], r["tier"]) for r in refused] == [("model_not_allowed", "free")]
    assert refused[0]["error_code"] in set(REFUSAL_CODES)


def test_the_failed_turn_is_logged_with_a_fault_code_and_its_model(produced: Produced):
    failed = [line for line in produced.finished("events") if line["turn"] == "t-5"]
    assert [(f["error_code"], f["model"]) for f in failed] == [
        ("model_error", "amazon.nova-lite-v1:0")
    ]
    assert failed[0]["error_code"] in set(FAULT_CODES)


def test_answered_turns_log_their_first_token_time(produced: Produced):
    answered = [line for line in produced.finished("events") if line["outcome"] == "done"]
    assert len(answered) == 3
    assert all(isinstance(line["first_token_ms"], int) for line in answered)


# -- Athena: each named query over the records ----------------------------------------------------

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE",
    "timestamp": "TIMESTAMP",
}


@pytest.fixture(scope="module")
def turns_table(produced: Produced) -> Iterator[duckdb.DuckDBPyConnection]:
    """The Glue table's columns and partition, in DuckDB, holding the records the turns wrote
    (``dt`` from each record's own day, as Firehose derives it from the arrival time)."""
    db = duckdb.connect()
    db.execute(f'CREATE SCHEMA "{DATABASE}"')
    dt, dt_type = PARTITION_COLUMN
    columns = [*TURN_COLUMNS, (dt, dt_type)]
    db.execute(
        f'CREATE TABLE "{DATABASE}"."{TABLE_NAME}" ('
        + ", ".join(f"{name} {_DUCKDB_TYPES[kind]}" for name, kind in columns)
        + ")"
    )
    names = [name for name, _ in TURN_COLUMNS]
    rows = [[record[name] for name in names] + [record["ts"][:10]] for record in produced.records]
    db.executemany(
        f'INSERT INTO "{DATABASE}"."{TABLE_NAME}" VALUES ({", ".join("?" * len(columns))})', rows
    )
    # Trino's date_format; DuckDB's strftime reads %Y-%m-%d the same way.
    db.execute("CREATE MACRO date_format(value, format) AS strftime(value, format)")
    yield db
    db.close()


def run(db: duckdb.DuckDBPyConnection, key: str) -> list[dict[str, Any]]:
    _, sql = named_queries(DATABASE)[key]
    cursor = db.execute(sql)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_firehose_received_one_record_per_turn_with_the_tables_columns(produced: Produced):
    assert len(produced.records) == 6
    assert all(list(r) == [name for name, _ in TURN_COLUMNS] for r in produced.records)


@pytest.mark.parametrize("key", sorted(named_queries(DATABASE)))
def test_every_named_query_runs_over_the_records(turns_table, key: str):
    assert run(turns_table, key), f"{key} found no rows among the turns"


def test_usage_and_spend_per_user_model_and_tier(turns_table):
    rows = {
        (r["user_id"], r["model_id"], r["tier"]): r
        for r in run(turns_table, "spend-by-user-model-tier")
    }
    free = rows[(SUB, "amazon.nova-micro-v1:0", "free")]  # two chat answers and one OpenAI one
    assert (free["turns"], free["input_tokens"], free["output_tokens"]) == (
        3,
        3 * INPUT,
        3 * OUTPUT,
    )
    assert free["spend_usd"] == pytest.approx(3 * TURN_COST)
    pro = rows[(OTHER_SUB, "amazon.nova-pro-v1:0", "pro")]
    assert (pro["turns"], pro["input_tokens"], pro["output_tokens"]) == (1, INPUT, OUTPUT)
    assert pro["spend_usd"] == pytest.approx(TURN_COST)
    # the refused and the failed turn cost nothing
    assert sum(r["spend_usd"] for r in rows.values()) == pytest.approx(4 * TURN_COST)


def test_top_users_by_tokens_puts_the_heaviest_first(turns_table):
    rows = run(turns_table, "top-users-by-tokens")
    assert [(r["user_id"], r["total_tokens"]) for r in rows if r["total_tokens"]][:2] == [
        (SUB, 3 * (INPUT + OUTPUT)),
        (OTHER_SUB, INPUT + OUTPUT),
    ]


def test_tokens_and_spend_by_model_count_only_what_models_answered(turns_table):
    tokens = {r["model_id"]: r["output_tokens"] for r in run(turns_table, "tokens-by-model")}
    assert tokens["amazon.nova-micro-v1:0"] == 3 * OUTPUT
    assert tokens["amazon.nova-pro-v1:0"] == OUTPUT
    spend = {r["model_id"]: r["spend_usd"] for r in run(turns_table, "spend-by-model")}
    assert spend["amazon.nova-pro-v1:0"] == pytest.approx(TURN_COST)


def test_daily_active_users_and_spend_by_tier(turns_table):
    active = {r["tier"]: r["active_users"] for r in run(turns_table, "daily-active-users")}
    assert active == {"free": 1, "pro": 1}
    spend = {r["tier"]: (r["users"], r["spend_usd"]) for r in run(turns_table, "spend-by-tier")}
    assert spend["free"][0] == 1
    assert spend["free"][1] == pytest.approx(3 * TURN_COST)


def test_cache_hit_rate_counts_the_turns_that_ended_without_error(turns_table):
    (row,) = run(turns_table, "cache-hit-rate")
    assert (row["turns"], row["cache_hits"]) == (4, 0)


def test_the_deployed_openai_door_logs_its_turns_through_powertools(aws, monkeypatch):
    # GIVEN the OpenAI door's function as Lambda starts it (its door built from the environment)
    monkeypatch.setenv("USAGE_TABLE", "usage-of-the-door-log-test")
    monkeypatch.setenv("PREPARED_RESPONSES_TABLE", "prepared")
    door = openai_http._door_from_environment()
    # THEN its turns are logged by a Powertools logger (JSON lines with their fields), not the
    # standard library's root logger, which would drop the ``turn finished`` line
    from aws_lambda_powertools import Logger

    assert isinstance(door.core.deps.log, Logger)
