"""The usage store's port: what admission, settlement and release ask of it, and its failure.

:class:`gateway.usage_store.DynamoTurnStore` implements it over DynamoDB; tests use it as is
against moto, or subclass it to inject faults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.metering import Admission, UsageSnapshot
from gateway.prepared import PreparedResponse


class StoreUnavailable(Exception):
    """The usage store could not be read or written."""


@dataclass(frozen=True)
class TurnState:
    """What one read returns: the user's usage and any prepared-response candidates found."""

    usage: UsageSnapshot
    prepared: Mapping[str, PreparedResponse] = field(default_factory=dict)


class TurnStore(Protocol):
    def read(self, user_key: str, prepared_keys: Sequence[str]) -> TurnState:
        """The user's usage item (a consistent read) and any prepared-response candidates."""
        ...

    def read_prepared(self, prepared_keys: Sequence[str]) -> Mapping[str, PreparedResponse]: ...

    def reserve(
        self, user_key: str, admission: Admission, expected: UsageSnapshot, now: int
    ) -> UsageSnapshot | None:
        """Write the admission if the item is still ``expected``; otherwise return the item as
        it now is."""
        ...

    def count_request(self, user_key: str, bucket: int, now: int) -> UsageSnapshot:
        """Count one refused request, unconditionally; returns the item after the write."""
        ...

    def settle(self, user_key: str, reservation: Any, usage: Any, now: int) -> UsageSnapshot: ...

    def release(self, user_key: str, reservation_id: str) -> None: ...
