"""DynamoDB adapter of the turn's store: one usage item per user, prepared responses alongside.

Requests per uncontended turn: one ``BatchGetItem`` (the usage item, strongly consistent, and
any prepared-response candidates), one conditional ``UpdateItem`` to admit (the reservation, the
request count, the turn id), one ``UpdateItem`` to settle or release. A reservation that loses
a race gets the winner's item back from the failed write itself
(``ReturnValuesOnConditionCheckFailure``), so a retry costs one request.

Every write bumps the item's ``version``, so a snapshot the function kept from an earlier turn
is exact while its version is current: a warm function may reserve against it without reading
the item first (:meth:`DynamoTurnStore.read_prepared` then reads just the prepared-response
candidates, or nothing is read at all).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway.blocks import TOKENS_VALID_AFTER
from gateway.metering import Admission
from gateway.ports import StoreUnavailable, TurnState
from gateway.prepared import PreparedResponse
from gateway.schema import USAGE_TABLE
from gateway.usage import (
    COST,
    VERSION,
    CountedConversation,
    Reservation,
    TokenUsage,
    UsageSnapshot,
    bucket_attribute,
    cache_attribute,
    conversation_attribute,
    month_attribute,
    request_attribute,
    reservation_attribute,
    turn_attribute,
)
from gateway.windows import RATE_BUCKET_SECONDS, RATE_WINDOW_SECONDS, bucket_start, month_key

#: A usage item outlives its last write by this long (longer than any window it holds).
ITEM_TTL_SECONDS = 40 * 86_400
_PK = USAGE_TABLE.partition_key
_TTL = USAGE_TABLE.ttl_attribute


class DynamoTurnStore:
    """Usage and prepared responses over a low-level boto3 DynamoDB client."""

    def __init__(
        self,
        client: Callable[[], Any],
        usage_table: str,
        prepared_table: str = "",
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._usage_table = usage_table
        self._prepared_table = prepared_table
        self._sleep = sleep

    def read(self, user_key: str, prepared_keys: Sequence[str]) -> TurnState:
        request: dict[str, Any] = {
            self._usage_table: {"Keys": [{_PK: {"S": user_key}}], "ConsistentRead": True}
        }
        if prepared_keys and self._prepared_table:
            request[self._prepared_table] = {"Keys": [{_PK: {"S": k}} for k in prepared_keys]}
        found = self._batch_get(request)
        usage_items = [_plain(i) for i in found.get(self._usage_table, [])]
        prepared = self._prepared(found)
        return TurnState(UsageSnapshot.from_item(usage_items[0] if usage_items else None), prepared)

    def read_prepared(self, prepared_keys: Sequence[str]) -> Mapping[str, PreparedResponse]:
        """Just the prepared-response candidates (eventually consistent), for a turn whose
        usage item the function already knows."""
        if not prepared_keys or not self._prepared_table:
            return {}
        keys = [{_PK: {"S": k}} for k in prepared_keys]
        return self._prepared(self._batch_get({self._prepared_table: {"Keys": keys}}))

    def prepared_keys(self) -> list[str]:
        """Every prepared-response key: a ``Scan`` of the key attribute only, paginated by
        ``LastEvaluatedKey`` (for the in-memory index, refreshed every few tens of seconds;
        https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html)."""
        if not self._prepared_table:
            return []
        keys: list[str] = []
        request: dict[str, Any] = {"TableName": self._prepared_table, "ProjectionExpression": _PK}
        while True:
            page = self._call("scan", **request)
            keys += [item[_PK]["S"] for item in page.get("Items", []) if _PK in item]
            if not page.get("LastEvaluatedKey"):
                return keys
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _batch_get(self, request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for attempt in range(4):
            response = self._call("batch_get_item", RequestItems=request)
            for table, items in response.get("Responses", {}).items():
                found.setdefault(table, []).extend(items)
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            self._sleep(0.02 * 2**attempt)
        raise StoreUnavailable("keys left unprocessed")

    def _prepared(self, found: Mapping[str, list[dict[str, Any]]]) -> dict[str, PreparedResponse]:
        return {
            str(item[_PK]): PreparedResponse.from_item(item)
            for item in map(_plain, found.get(self._prepared_table, []))
        }

    def reserve(
        self, user_key: str, admission: Admission, expected: UsageSnapshot, now: int
    ) -> UsageSnapshot | None:
        names = {"#v": VERSION, "#t": _TTL}
        values: dict[str, Any] = {
            ":next": {"N": str(expected.version + 1)},
            ":t": {"N": str(now + ITEM_TTL_SECONDS)},
        }
        sets = ["#v = :next", "#t = :t"]
        adds = []
        if admission.reservation is not None:
            names["#r"] = reservation_attribute(admission.reservation.id)
            values[":r"] = _serialise(admission.reservation.to_attribute())
            sets.append("#r = :r")
        if admission.turn_key is not None:
            names["#k"] = turn_attribute(admission.turn_key)
            values[":k"] = {"S": admission.turn_mark}
            sets.append("#k = :k")
        if admission.request_bucket is not None:
            # The request rate, counted by the write that admits (no request of its own).
            names["#q"] = request_attribute(admission.request_bucket)
            values[":one"] = {"N": "1"}
            adds.append("#q :one")
        if not expected.exists:
            condition = f"attribute_not_exists({_PK})"
        elif expected.version == 0:
            condition = "attribute_not_exists(#v)"
        else:
            condition = "#v = :v"
            values[":v"] = {"N": str(expected.version)}
        if expected.exists:
            # An operator's block (gateway.blocks) is part of the condition too: the version
            # already changes with it, but the write itself must never admit a blocked token.
            names["#b"] = TOKENS_VALID_AFTER
            if admission.signed_in_at is None:
                condition += " AND attribute_not_exists(#b)"
            else:
                condition += " AND (attribute_not_exists(#b) OR #b < :signedIn)"
                values[":signedIn"] = {"N": str(admission.signed_in_at)}
        expression = "SET " + ", ".join(sets)
        if adds:
            expression += " ADD " + ", ".join(adds)
        if admission.prune:
            for index, name in enumerate(admission.prune):
                names[f"#p{index}"] = name
            expression += " REMOVE " + ", ".join(f"#p{i}" for i in range(len(admission.prune)))
        try:
            self._call(
                "update_item",
                TableName=self._usage_table,
                Key={_PK: {"S": user_key}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as lost:
            return UsageSnapshot.from_item(_plain(lost.item) if lost.item else None)
        return None

    def count_request(self, user_key: str, bucket: int, now: int) -> UsageSnapshot:
        """Count a request refused before admission: one unconditional ``UpdateItem`` (it
        bumps the version, so a turn planned on an older item re-plans), returning the item.
        ``ADD`` creates a missing number (or item) at the value added, so no read is needed
        (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html)."""
        # Without reading, it cannot know which old buckets exist, so it removes the ones that
        # have just left the rate window (a missing attribute is removed as a no-op, as a
        # release relies on too): a flood of refused events never grows the item.
        old = {
            f"#o{i}": request_attribute(bucket - RATE_WINDOW_SECONDS - i * RATE_BUCKET_SECONDS)
            for i in range(RATE_WINDOW_SECONDS // RATE_BUCKET_SECONDS)
        }
        response = self._call(
            "update_item",
            TableName=self._usage_table,
            Key={_PK: {"S": user_key}},
            UpdateExpression="SET #t = :t ADD #q :one, #v :one REMOVE " + ", ".join(old),
            ExpressionAttributeNames={
                "#q": request_attribute(bucket),
                "#v": VERSION,
                "#t": _TTL,
                **old,
            },
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":t": {"N": str(now + ITEM_TTL_SECONDS)},
            },
            ReturnValues="ALL_NEW",
        )
        return UsageSnapshot.from_item(_plain(response.get("Attributes") or {}))

    def settle(
        self,
        user_key: str,
        reservation: Reservation | None,
        usage: TokenUsage,
        now: int,
        counted: CountedConversation | None = None,
    ) -> UsageSnapshot:
        expression, names, values, condition = _settle_update(reservation, usage, now, counted)
        try:
            response = self._call(
                "update_item",
                TableName=self._usage_table,
                Key={_PK: {"S": user_key}},
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                **condition,
            )
        except _ConditionFailed as settled_already:
            return UsageSnapshot.from_item(
                _plain(settled_already.item) if settled_already.item else None
            )
        return UsageSnapshot.from_item(_plain(response.get("Attributes") or {}))

    def release(self, user_key: str, reservation_id: str) -> None:
        # A missing item has no reservation to remove (and must not be recreated empty).
        with contextlib.suppress(_ConditionFailed):
            self._call(
                "update_item",
                TableName=self._usage_table,
                Key={_PK: {"S": user_key}},
                UpdateExpression="REMOVE #r ADD #v :one",
                ConditionExpression=f"attribute_exists({_PK})",
                ExpressionAttributeNames={
                    "#r": reservation_attribute(reservation_id),
                    "#v": VERSION,
                },
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    def _call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client(), operation)(**kwargs)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise _ConditionFailed(err.response.get("Item")) from None
            raise StoreUnavailable(
                f"{operation}: {err.response.get('Error', {}).get('Code')}"
            ) from err
        except BotoCoreError as err:
            raise StoreUnavailable(f"{operation}: {type(err).__name__}") from err


def _settle_update(
    reservation: Reservation | None,
    usage: TokenUsage,
    now: int,
    counted: CountedConversation | None,
) -> tuple[str, dict[str, str], dict[str, Any], dict[str, str]]:
    """The settle's update: usage (and its cost) added to the reservation's bucket and month,
    the counted conversation set, the reservation removed once."""
    bucket = reservation.bucket if reservation else bucket_start(now)
    month = reservation.month if reservation else month_key(now)
    names = {
        "#bi": bucket_attribute(bucket, "i"),
        "#bo": bucket_attribute(bucket, "o"),
        "#mi": month_attribute(month, "i"),
        "#mo": month_attribute(month, "o"),
        "#t": _TTL,
        "#v": VERSION,
    }
    values = {
        ":i": {"N": str(usage.input_tokens)},
        ":o": {"N": str(usage.output_tokens)},
        ":t": {"N": str(now + ITEM_TTL_SECONDS)},
        ":one": {"N": "1"},
    }
    # Every write bumps the version, so a kept snapshot is current only while nothing changed.
    additions = ["#bi :i", "#bo :o", "#mi :i", "#mo :o", "#v :one"]
    if usage.cost_nano:
        names["#bu"] = bucket_attribute(bucket, COST)
        names["#mu"] = month_attribute(month, COST)
        values[":u"] = {"N": str(usage.cost_nano)}
        additions += ["#bu :u", "#mu :u"]
    if usage.cache_read_tokens or usage.cache_write_tokens:
        names["#cr"] = cache_attribute(month, "r")
        names["#cw"] = cache_attribute(month, "w")
        values[":cr"] = {"N": str(usage.cache_read_tokens)}
        values[":cw"] = {"N": str(usage.cache_write_tokens)}
        additions += ["#cr :cr", "#cw :cw"]
    assignments = ["#t = :t"]
    if counted is not None:
        names["#k"] = conversation_attribute(counted.key)
        values[":k"] = {"S": counted.to_attribute()}
        assignments.append("#k = :k")
    expression = "SET " + ", ".join(assignments) + " ADD " + ", ".join(additions)
    condition: dict[str, str] = {}
    if reservation:
        names["#r"] = reservation_attribute(reservation.id)
        expression += " REMOVE #r"
        # Settle exactly once: the write that removes the reservation is the one that
        # charges. If botocore retries a settle whose first attempt did land (a timeout
        # after DynamoDB applied it), the retry finds no reservation and charges nothing.
        # A live turn's reservation cannot have expired: it outlives the function timeout.
        condition = {
            "ConditionExpression": "attribute_exists(#r)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    return expression, names, values, condition


class _ConditionFailed(Exception):
    def __init__(self, item: Mapping[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserialiser = TypeDeserializer()
    return {name: deserialiser.deserialize(value) for name, value in item.items()}


def _serialise(value: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serialised: dict[str, Any] = TypeSerializer().serialize(dict(value))
    return serialised
