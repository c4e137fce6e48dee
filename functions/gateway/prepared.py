"""Prepared responses: operator-written answers served for a first prompt instead of a model call.

An entry is keyed by model scope (a model id, or ``*`` for every model) and the SHA-256 of the
normalised prompt, so trivially different spellings of one question share an entry. Entries are
written only by operators (``tools/prepared_responses.py``), never from model output.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.schema import PREPARED_RESPONSES_TABLE

PK = PREPARED_RESPONSES_TABLE.partition_key
TTL = PREPARED_RESPONSES_TABLE.ttl_attribute

KEY_PREFIX = "prep#"
ANY_MODEL = "*"

_WHITESPACE = re.compile(r"\s+")


def normalise_prompt(prompt: str) -> str:
    """NFKC, casefold, collapse whitespace, and strip trailing punctuation and whitespace."""
    text = unicodedata.normalize("NFKC", prompt).casefold()
    text = _WHITESPACE.sub(" ", text).strip()
    end = len(text)
    while end and (text[end - 1].isspace() or unicodedata.category(text[end - 1]).startswith("P")):
        end -= 1
    return text[:end]


def prepared_key(scope: str, prompt: str) -> str:
    """``prep#<scope>#<sha256 of the normalised prompt>``."""
    # ``surrogatepass`` so that any string hashes (validation refuses lone surrogates before a
    # turn gets here; an operator's CLI input may still hold one).
    digest = hashlib.sha256(normalise_prompt(prompt).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{KEY_PREFIX}{scope}#{digest}"


def candidate_keys(model_id: str, prompt: str) -> tuple[str, str]:
    """The keys a turn looks up, most specific first: the model's own entry, then ``*``."""
    return prepared_key(model_id, prompt), prepared_key(ANY_MODEL, prompt)


@dataclass(frozen=True)
class PreparedResponse:
    """One stored answer."""

    key: str
    prompt: str
    response: str
    expires_at: int | None = None

    def live_at(self, now: int) -> bool:
        # DynamoDB deletes expired items lazily (within days), so expiry is checked on read too.
        return self.expires_at is None or self.expires_at > now

    @property
    def scope(self) -> str:
        return self.key[len(KEY_PREFIX) :].rpartition("#")[0]

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> PreparedResponse:
        expires = item.get(TTL)
        return cls(
            key=str(item[PK]),
            prompt=str(item.get("prompt", "")),
            response=str(item.get("response", "")),
            expires_at=int(expires) if expires is not None else None,
        )

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {PK: self.key, "prompt": self.prompt, "response": self.response}
        if self.expires_at is not None:
            item[TTL] = self.expires_at
        return item


def pick(
    found: Mapping[str, PreparedResponse], keys: tuple[str, ...], now: int
) -> PreparedResponse | None:
    """The first live entry among ``keys`` (model scope before ``*``)."""
    for key in keys:
        entry = found.get(key)
        if entry is not None and entry.live_at(now) and entry.response:
            return entry
    return None


class PreparedResponseTable:
    """Operator access to the prepared-responses table (a boto3 DynamoDB *resource* Table)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def put(
        self, prompt: str, response: str, *, scope: str = ANY_MODEL, expires_at: int | None = None
    ) -> PreparedResponse:
        entry = PreparedResponse(prepared_key(scope, prompt), prompt, response, expires_at)
        self._table.put_item(Item=entry.to_item())
        return entry

    def delete(self, prompt: str, *, scope: str = ANY_MODEL) -> bool:
        result = self._table.delete_item(
            Key={PK: prepared_key(scope, prompt)}, ReturnValues="ALL_OLD"
        )
        return bool(result.get("Attributes"))

    def entries(self) -> Iterator[PreparedResponse]:
        kwargs: dict[str, Any] = {}
        while True:
            page = self._table.scan(**kwargs)
            for item in page.get("Items", []):
                if str(item.get(PK, "")).startswith(KEY_PREFIX):
                    yield PreparedResponse.from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
