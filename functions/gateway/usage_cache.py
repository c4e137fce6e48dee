"""The last known usage item of recently seen users, kept by a warm function."""

from __future__ import annotations

import threading
from collections import OrderedDict

from gateway.usage import UsageSnapshot

#: Users whose last known usage a warm function keeps (a snapshot is a few tens of KB at most).
USAGE_CACHE_SIZE = 256


class UsageCache:
    """The last known usage snapshot of recently seen users, in one warm function (thread-safe,
    least recently used first out).

    A snapshot is put here only as the store returned it — a consistent read, the current item
    a losing reservation got back, the item a settle left — so each is exact at its version.
    It saves the read before a reservation: the reservation is conditioned on the version, so if
    the item changed meanwhile it writes nothing and returns the item as it now is.
    """

    def __init__(self, max_users: int = USAGE_CACHE_SIZE) -> None:
        self._max = max(1, max_users)
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[str, UsageSnapshot] = OrderedDict()

    def get(self, user_key: str) -> UsageSnapshot | None:
        with self._lock:
            snapshot = self._snapshots.get(user_key)
            if snapshot is not None:
                self._snapshots.move_to_end(user_key)
            return snapshot

    def put(self, user_key: str, snapshot: UsageSnapshot) -> None:
        with self._lock:
            known = self._snapshots.get(user_key)
            if known is not None and snapshot.exists and known.version > snapshot.version:
                return  # a concurrent turn of the same user already brought a newer one
            self._snapshots[user_key] = snapshot
            self._snapshots.move_to_end(user_key)
            while len(self._snapshots) > self._max:
                self._snapshots.popitem(last=False)

    def drop(self, user_key: str) -> None:
        with self._lock:
            self._snapshots.pop(user_key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._snapshots)
