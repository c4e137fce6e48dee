"""The record of turns the CLI reads: the analytics records the functions write for every turn
(:class:`gateway.telemetry.TurnRecord`, one per turn, through Firehose).

Deployed, Firehose writes them as Parquet under the Glue ``turns`` table, so they are read with
Athena (parameterised with ``ExecutionParameters``:
https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements-querying-using-execution-parameters.html).
Locally, ``make dev``'s Firehose (moto) stores the JSON lines as the functions sent them in the
analytics bucket, so they are read from there. Records arrive once Firehose flushes its buffer
(deployed: up to its buffering interval), so the newest turn may be missing for a while.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from components.analytics_schema import RECORDS_PREFIX, TABLE_NAME

#: The columns shown for a recent turn, as the record names them.
RECENT_COLUMNS = (
    "ts",
    "turn_id",
    "model_id",
    "outcome",
    "error_code",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "door",
)


@dataclass(frozen=True)
class UserTotals:
    """One user's turns and tokens over the days asked for."""

    user_id: str
    turns: int
    tokens: int
    cost_usd: float


class TurnHistory(Protocol):
    def recent(self, sub: str, limit: int) -> list[dict[str, Any]]: ...

    def totals(self, days: int) -> list[UserTotals]: ...


def first_day(days: int, now: float) -> str:
    """``YYYY-MM-DD`` of the oldest UTC day in the last ``days`` days (today is one)."""
    return (datetime.fromtimestamp(now, UTC) - timedelta(days=days - 1)).strftime("%Y-%m-%d")


def ranked(totals: list[UserTotals], by: str, limit: int) -> list[UserTotals]:
    """The heaviest users by ``tokens`` or ``turns`` (ties by user id, for a stable order)."""
    return sorted(totals, key=lambda t: (-getattr(t, by), t.user_id))[:limit]


class LocalTurnHistory:
    """The JSON-lines records ``make dev`` keeps in its (moto) analytics bucket."""

    def __init__(self, s3: Any, bucket: str, clock: Any = time.time) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._clock = clock

    def recent(self, sub: str, limit: int) -> list[dict[str, Any]]:
        mine = [r for r in self._records() if r.get("user_id") == sub]
        mine.sort(key=lambda r: str(r.get("ts", "")), reverse=True)
        return [{c: r.get(c) for c in RECENT_COLUMNS} for r in mine[:limit]]

    def totals(self, days: int) -> list[UserTotals]:
        since = first_day(days, self._clock())
        turns: Counter[str] = Counter()
        tokens: Counter[str] = Counter()
        cost: dict[str, float] = {}
        for record in self._records():
            user = str(record.get("user_id") or "")
            if not user or str(record.get("ts", ""))[:10] < since:
                continue
            tokens[user] += int(record.get("input_tokens") or 0) + int(
                record.get("output_tokens") or 0
            )
            turns[user] += record.get("outcome") == "done"
            cost[user] = cost.get(user, 0.0) + float(record.get("cost_usd") or 0.0)
        return [UserTotals(u, turns[u], tokens[u], round(cost[u], 6)) for u in sorted(cost)]

    def _records(self) -> Iterator[Mapping[str, Any]]:
        request: dict[str, Any] = {"Bucket": self._bucket, "Prefix": RECORDS_PREFIX}
        while True:
            page = self._s3.list_objects_v2(**request)
            for entry in page.get("Contents", []):
                body = self._s3.get_object(Bucket=self._bucket, Key=entry["Key"])["Body"].read()
                for line in body.decode("utf-8", "replace").splitlines():
                    if line.strip():
                        yield json.loads(line)
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]


class AthenaTurnHistory:
    """The Glue ``turns`` table through the stack's Athena workgroup (results location and
    encryption are the workgroup's, which the stack enforces)."""

    def __init__(
        self,
        athena: Any,
        workgroup: str,
        database: str,
        *,
        clock: Any = time.time,
        sleep: Any = time.sleep,
        timeout_seconds: float = 120.0,
    ) -> None:
        self._athena = athena
        self._workgroup = workgroup
        self._table = f'"{database}"."{TABLE_NAME}"'
        self._clock = clock
        self._sleep = sleep
        self._timeout = timeout_seconds

    def recent(self, sub: str, limit: int, days: int = 30) -> list[dict[str, Any]]:
        sql = (
            f"SELECT {', '.join(RECENT_COLUMNS)} FROM {self._table} "
            f"WHERE user_id = ? AND dt >= ? ORDER BY ts DESC LIMIT {int(limit)}"
        )
        return self._query(sql, [sub, first_day(days, self._clock())])

    def totals(self, days: int) -> list[UserTotals]:
        sql = (
            "SELECT user_id, count_if(outcome = 'done') AS turns, "
            "sum(input_tokens + output_tokens) AS tokens, sum(cost_usd) AS cost_usd "
            f"FROM {self._table} WHERE dt >= ? GROUP BY user_id"
        )
        return [
            UserTotals(
                str(row["user_id"]),
                int(row["turns"] or 0),
                int(row["tokens"] or 0),
                round(float(row["cost_usd"] or 0.0), 6),
            )
            for row in self._query(sql, [first_day(days, self._clock())])
        ]

    def _query(self, sql: str, parameters: list[str]) -> list[dict[str, Any]]:
        # Execution parameters are SQL literal values, a string in single quotes as in
        # ``EXECUTE my_insert USING 'usa'``
        # (https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements-execute.html,
        # https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements-running-queries-with-execution-parameters-using-the-aws-cli.html);
        # a quote inside is doubled.
        started = self._athena.start_query_execution(
            QueryString=sql,
            WorkGroup=self._workgroup,
            ExecutionParameters=["'" + p.replace("'", "''") + "'" for p in parameters],
        )
        query_id = started["QueryExecutionId"]
        deadline = self._clock() + self._timeout
        while True:
            status = self._athena.get_query_execution(QueryExecutionId=query_id)
            state = status["QueryExecution"]["Status"]["State"]
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELLED"):
                reason = status["QueryExecution"]["Status"].get("StateChangeReason", state)
                raise RuntimeError(f"the Athena query {state.lower()}: {reason}")
            if self._clock() > deadline:
                raise TimeoutError(f"the Athena query {query_id} took over {self._timeout:.0f}s")
            self._sleep(1.0)
        return self._rows(query_id)

    def _rows(self, query_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        header: list[str] | None = None
        request: dict[str, Any] = {"QueryExecutionId": query_id}
        while True:
            page = self._athena.get_query_results(**request)
            for raw in page["ResultSet"]["Rows"]:
                values = [cell.get("VarCharValue") for cell in raw.get("Data", [])]
                if header is None:
                    header = [str(v) for v in values]  # the first row names the columns
                    continue
                rows.append(dict(zip(header, values, strict=False)))
            if not page.get("NextToken"):
                return rows
            request["NextToken"] = page["NextToken"]
