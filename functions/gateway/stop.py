"""Stopping a running turn from another invocation.

A client stops a turn by publishing ``{"action": "stop", "turnId"}`` to its inbound channel.
That publish runs in a different function invocation (on AWS, usually another instance) from
the turn it names, so the signal goes through the usage table: the stop writes one small item,
``stop#<sub>#<turnId>``, and the running turn looks for it with one ``GetItem`` at most once per
:data:`CHECK_INTERVAL_SECONDS` of streaming — no request at all on a shorter turn. The item
carries the table's TTL attribute, so DynamoDB removes it by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from gateway.metering import estimate_input_tokens
from gateway.model import Completion, ModelRequest
from gateway.ports import Clock, StopSignals, TurnLog
from gateway.schema import PARTITION_KEY, TTL_ATTRIBUTE
from gateway.token_bound import estimate_tokens
from gateway.usage import TokenUsage

#: How often a streaming turn looks for a stop: at most one extra request per this many seconds
#: of streaming, and a stop is seen within this long after it was recorded.
CHECK_INTERVAL_SECONDS = 2.0
#: A stop item outlives the longest turn (the function timeout is at most 900 s).
STOP_TTL_SECONDS = 900
_PREFIX = "stop#"
#: The ``stopReason`` of a turn its user stopped.
STOP_REASON_STOPPED = "stopped"


def stop_key(sub: str, turn_id: str) -> str:
    """The usage-table key of a stop. Subs and turn ids never hold ``#``, so keys cannot
    collide with another user's, nor with ``user#…`` usage items."""
    return f"{_PREFIX}{sub}#{turn_id}"


class StopUnavailable(Exception):
    """The stop store could not be written or read."""


class NoStopSignals:
    """Stops are neither recorded nor looked for (a runtime with no usage table)."""

    def request(self, sub: str, turn_id: str, now: int) -> None:
        raise StopUnavailable("no store for stop requests")

    def requested(self, sub: str, turn_id: str, now: int) -> bool:
        return False


class DynamoStopSignals:
    """Stops as items of the usage table, over a low-level boto3 DynamoDB client.

    The write is an ``UpdateItem``, which creates the item when it does not exist
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html), so
    the function needs no permission beyond the ``GetItem``/``UpdateItem`` it already holds on
    the table. DynamoDB's TTL deletes expired items only in the background, typically within a
    few days (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html),
    and they stay readable until then
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html),
    so the reader checks the expiry itself.
    """

    def __init__(
        self,
        client: Callable[[], Any],
        table: str,
        *,
        partition_key: str = PARTITION_KEY,
        ttl_attribute: str = TTL_ATTRIBUTE,
    ) -> None:
        self._client = client
        self._table = table
        self._pk = partition_key
        self._ttl = ttl_attribute

    def request(self, sub: str, turn_id: str, now: int) -> None:
        self._call(
            "update_item",
            TableName=self._table,
            Key={self._pk: {"S": stop_key(sub, turn_id)}},
            UpdateExpression="SET #t = :t, stoppedAt = :now",
            ExpressionAttributeNames={"#t": self._ttl},
            ExpressionAttributeValues={
                ":t": {"N": str(now + STOP_TTL_SECONDS)},
                ":now": {"N": str(now)},
            },
        )

    def requested(self, sub: str, turn_id: str, now: int) -> bool:
        found = self._call(
            "get_item",
            TableName=self._table,
            Key={self._pk: {"S": stop_key(sub, turn_id)}},
            ProjectionExpression="#t",
            ExpressionAttributeNames={"#t": self._ttl},
        )
        expires = (found.get("Item") or {}).get(self._ttl, {}).get("N")
        return expires is not None and int(expires) > now

    def _call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client(), operation)(**kwargs)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            raise StopUnavailable(f"{operation}: {code}") from err
        except BotoCoreError as err:
            raise StopUnavailable(f"{operation}: {type(err).__name__}") from err


class StopWatch:
    """One streaming turn's look-out for its stop: ``stopped()`` between stream events asks the
    store at most once per ``interval`` and never during the first ``interval``."""

    def __init__(
        self,
        signals: StopSignals,
        sub: str,
        turn_id: str,
        *,
        monotonic: Callable[[], float],
        wall: Callable[[], float] = time.time,
        interval: float = CHECK_INTERVAL_SECONDS,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._signals = signals
        self._sub = sub
        self._turn_id = turn_id
        self._monotonic = monotonic
        self._wall = wall
        self._interval = interval
        self._on_error = on_error
        self._next = monotonic() + interval
        self.checks = 0
        self.stopped_at: float | None = None

    def stopped(self) -> bool:
        if self.stopped_at is not None:
            return True
        now = self._monotonic()
        if now < self._next:
            return False
        self._next = now + self._interval
        self.checks += 1
        try:
            found = self._signals.requested(self._sub, self._turn_id, int(self._wall()))
        except Exception as err:  # a stop is best effort; the turn streams on
            if self._on_error:
                self._on_error(err)
            return False
        if found:
            self.stopped_at = now
        return found


def stop_watch(
    signals: StopSignals, sub: str, turn_id: str, clock: Clock, log: TurnLog
) -> StopWatch:
    """The watch of one streaming turn, logging (not failing on) a stop check that fails."""

    def unavailable(err: Exception) -> None:
        log.warning("stop check failed", extra={"reason": str(err)[:200]})

    return StopWatch(
        signals, sub, turn_id, monotonic=clock.monotonic, wall=clock.now, on_error=unavailable
    )


def cut_short(
    parts: Iterable[object], request: ModelRequest, produced_chars: int, log: TurnLog
) -> Completion:
    """End a stopped turn's model call and say what it produced.

    Closing the provider's generator runs its ``finally``: for Bedrock that closes the
    ConverseStream's event stream, which closes the HTTP response body
    (botocore ``eventstream.py``, ``EventStream.close``), so the model stops generating. A
    stream cut short reports no usage, so it is estimated as for a stream that broke midway:
    the input estimate, and about four characters per output token produced.
    """
    close = getattr(parts, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("model stream not closed cleanly")
    estimate = estimate_input_tokens(request.texts())
    produced = estimate_tokens(produced_chars, at_most=request.max_tokens)
    return Completion(STOP_REASON_STOPPED, TokenUsage(estimate, produced))
