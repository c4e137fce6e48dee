"""The users' usage items, read and changed with the gateway's own layout (:mod:`gateway.usage`).

Every change bumps the item's ``version``, as the functions' writes do, so a warm function's
kept copy of the item is out of date at once and its next turn re-reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from gateway.blocks import TOKENS_VALID_AFTER
from gateway.schema import PARTITION_KEY, TTL_ATTRIBUTE, usage_key
from gateway.usage import (
    BUCKET_PREFIX,
    MONTH_PREFIX,
    VERSION,
    UsageSnapshot,
)
from gateway.usage_store import ITEM_TTL_SECONDS

#: The windows ``reset`` clears: daily = every 10-minute bucket, monthly = every month total.
WINDOW_PREFIXES = {
    "daily": (BUCKET_PREFIX,),
    "monthly": (MONTH_PREFIX,),
    "all": (BUCKET_PREFIX, MONTH_PREFIX),
}
_USER_PREFIX = usage_key("")


class ItemChanged(Exception):
    """The item changed between the read and the write (a turn ran); nothing was written."""


@dataclass(frozen=True)
class UsageItem:
    """One user's item: the sub it belongs to, its parsed snapshot and its raw attributes."""

    sub: str
    snapshot: UsageSnapshot
    attributes: dict[str, Any]


class UsageItems:
    """Reads and operator writes on the usage table (low-level DynamoDB client)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def get(self, sub: str) -> UsageItem:
        found = self._dynamodb.get_item(
            TableName=self._table, Key=_key(sub), ConsistentRead=True
        ).get("Item")
        return _item(sub, _plain(found) if found else {})

    def all(self) -> Iterator[UsageItem]:
        """Every user's item (a paginated ``Scan``; stop items and others are skipped)."""
        request: dict[str, Any] = {"TableName": self._table}
        while True:
            page = self._dynamodb.scan(**request)
            for raw in page.get("Items", []):
                plain = _plain(raw)
                pk = str(plain.get(PARTITION_KEY, ""))
                if pk.startswith(_USER_PREFIX):
                    yield _item(pk[len(_USER_PREFIX) :], plain)
            if not page.get("LastEvaluatedKey"):
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def block(self, sub: str, now: int) -> None:
        """Refuse every token signed in at or before ``now`` (:mod:`gateway.blocks`); creates
        the item if the user has none."""
        self._dynamodb.update_item(
            TableName=self._table,
            Key=_key(sub),
            UpdateExpression="SET #b = :now, #t = :t ADD #v :one",
            ExpressionAttributeNames={"#b": TOKENS_VALID_AFTER, "#t": TTL_ATTRIBUTE, "#v": VERSION},
            ExpressionAttributeValues={
                ":now": {"N": str(now)},
                ":t": {"N": str(now + ITEM_TTL_SECONDS)},
                ":one": {"N": "1"},
            },
        )

    def reset(self, item: UsageItem, window: str) -> list[str]:
        """Remove the window's settled counters from ``item`` as read (live reservations stay:
        their turns settle into the emptied window). Returns the attributes removed."""
        prefixes = WINDOW_PREFIXES[window]
        names = sorted(a for a in item.attributes if a.startswith(prefixes))
        if not names:
            return []
        aliases = {f"#a{i}": name for i, name in enumerate(names)}
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(#v)"}
        values: dict[str, Any] = {":one": {"N": "1"}}
        if VERSION in item.attributes:
            condition = {"ConditionExpression": "#v = :seen"}
            values[":seen"] = {"N": str(item.attributes[VERSION])}
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=_key(item.sub),
                UpdateExpression="ADD #v :one REMOVE " + ", ".join(aliases),
                ExpressionAttributeNames={**aliases, "#v": VERSION},
                ExpressionAttributeValues=values,
                **condition,
            )
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            raise ItemChanged("the usage item changed while it was being reset") from None
        return names


def _key(sub: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": usage_key(sub)}}


def _item(sub: str, plain: dict[str, Any]) -> UsageItem:
    return UsageItem(sub, UsageSnapshot.from_item(plain or None), plain)


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    deserialiser = TypeDeserializer()
    return {name: deserialiser.deserialize(value) for name, value in item.items()}
