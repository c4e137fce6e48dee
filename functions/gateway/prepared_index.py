"""The keys of every prepared response, kept in memory so most turns skip the lookup.

A conversation's first message on a tier with ``cache: true`` could be served a prepared
response, so it used to read its candidates before the model was called. A warm function instead
keeps the set of prepared keys (one ``Scan`` of the keys only, refreshed in the background every
``max_age`` seconds, as the tier config is) and reads candidates only for a prompt that has an
entry. An index older than ``max_age`` is not trusted: while it refreshes in the background, turns
read their candidates as before. So an entry put by an operator is served at most ``max_age``
seconds later, on the first turn after that, on every warm instance; a refresh that keeps failing
costs one read per first message, never a missed entry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any


class PreparedIndex:
    """A refreshed set of prepared-response keys (thread-safe; refreshes one at a time)."""

    def __init__(
        self,
        load: Callable[[], Iterable[str]],
        max_age: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        log: Any = None,
    ) -> None:
        self._load = load
        self._max_age = max_age
        self._clock = clock
        self._log = log
        self._lock = threading.Lock()
        self._keys: frozenset[str] | None = None
        self._loaded_at = 0.0
        self._refreshing = False

    def keys(self) -> frozenset[str] | None:
        """The known keys, or None when the index cannot be trusted (not loaded yet, or older
        than ``max_age``).

        When a refresh is due, this starts one on a daemon thread the index owns (at most one
        at a time, named ``prepared-index``): the turn asking never waits for the scan. The
        thread ends when the scan returns or fails, bounded by the store client's timeouts and
        retries; nothing else holds it."""
        now = self._clock()
        with self._lock:
            keys, age = self._keys, now - self._loaded_at
            due = (keys is None or age >= self._max_age) and not self._refreshing
            if due:
                self._refreshing = True
        if due:
            threading.Thread(target=self.refresh, name="prepared-index", daemon=True).start()
        return keys if keys is not None and age < self._max_age else None

    def forget(self) -> None:
        """Trust no keys until the next refresh (after a SnapStart restore the snapshot's keys
        are as old as the snapshot, however the clock measures their age)."""
        with self._lock:
            self._keys = None

    def refresh(self) -> None:
        try:
            keys = frozenset(self._load())
        except Exception as err:  # turns look entries up until a refresh succeeds
            if self._log is not None:
                self._log.warning(
                    "prepared-response index not refreshed", extra={"reason": str(err)[:200]}
                )
            with self._lock:
                self._refreshing = False
            return
        with self._lock:
            self._keys, self._loaded_at, self._refreshing = keys, self._clock(), False

    def could_serve(self, candidates: Iterable[str]) -> bool | None:
        """Whether any candidate has an entry (None: unknown, look it up)."""
        keys = self.keys()
        if keys is None:
            return None
        return any(c in keys for c in candidates)
