"""The relay: a turn's outbound events, numbered and coalesced, on the user's outbound channel.

The first delta goes out at once, published by the thread that reads the model stream (a
hand-over to another thread could wait up to the interpreter's switch interval, 5 ms, while the
reader keeps the interpreter busy); later deltas are coalesced into one event per flush interval
(or sooner when the buffer passes a few KB), and a publish carries at most five events. From the
second delta on a dedicated sender thread publishes, so the model stream is read at full speed
and to its end even while a publish is slow, retrying or failing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.contract import MAX_EVENTS_PER_PUBLISH
from gateway.wire import delta_body, with_header

#: Publish before the flush interval is up once the buffered text passes this size.
MAX_BUFFER_BYTES = 4096
#: Split a delta larger than this into several events (AppSync caps an event at 240 KB).
MAX_DELTA_CHARS = 32_000


class PublishError(Exception):
    """Events could not be published (after the publisher's own retries)."""


class Publisher(Protocol):
    """Publishes serialised events to one channel, in order, in one request, and says how many
    retries that took (``None`` counts as none)."""

    def publish(self, channel: str, events: list[str]) -> int | None: ...


@dataclass(frozen=True)
class RelayReport:
    """What a turn's relay sent."""

    events_published: int
    events_failed: int
    publish_requests: int
    #: Publishes that succeeded only after retrying (throttling, 5xx, a dropped connection).
    publish_retries: int = 0


class StreamRelay:
    """One turn's outbound stream: ``delta()`` any number of times, then ``finish()`` once."""

    def __init__(
        self,
        publisher: Publisher,
        channel: str,
        conversation_id: str | None,
        turn_id: str,
        *,
        flush_interval: float,
        on_error: Callable[[Exception], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_buffer_bytes: int = MAX_BUFFER_BYTES,
    ) -> None:
        self.channel = channel
        self.conversation_id = conversation_id
        self.turn_id = turn_id
        self._publisher = publisher
        self._interval = max(0.0, flush_interval)
        self._on_error = on_error
        self._clock = clock
        self._max_buffer = max_buffer_bytes
        self._cond = threading.Condition()
        self._buffer: list[str] = []
        self._buffered_bytes = 0
        self._terminal: dict[str, Any] | None = None
        self._finished = False
        self._sender: threading.Thread | None = None
        self._first_flushed = False
        self._last_flush = 0.0
        self._seq = 0
        self._published = 0
        self._failed = 0
        self._requests = 0
        self._retries = 0

    @property
    def finished(self) -> bool:
        return self._finished

    def delta(self, text: str) -> None:
        """Queue answer text. The turn's first text is published before this returns, on the
        calling thread; later text never waits for publishing."""
        if not text:
            return
        first: list[str] = []
        with self._cond:
            if self._terminal is not None:
                return
            self._buffer.append(text)
            self._buffered_bytes += len(text.encode("utf-8"))
            if not self._first_flushed and self._sender is None:
                first = self._take_events(final=False)
            else:
                if self._sender is None:
                    self._sender = threading.Thread(
                        target=self._send_loop, name=f"relay-{self.turn_id}", daemon=True
                    )
                    self._sender.start()
                self._cond.notify()
        if first:
            # No sender thread exists yet, so nothing else publishes until this returns: the
            # order of the turn's events holds.
            self._flush(first)

    def finish(self, body: Mapping[str, Any]) -> RelayReport:
        """Publish what is buffered and then the terminal event; later calls do nothing."""
        with self._cond:
            if self._terminal is not None:
                return self.report()
            self._terminal = dict(body)
            sender = self._sender
            self._cond.notify()
        if sender is not None:
            sender.join()
        else:
            self._flush(self._take_events(final=True))
        self._finished = True
        return self.report()

    def report(self) -> RelayReport:
        return RelayReport(self._published, self._failed, self._requests, self._retries)

    # -- sender -----------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                final = self._wait_for_flush()
                events = self._take_events(final=final)
                self._cond.notify_all()  # the first delta's hand-off
            self._flush(events)
            if final:
                return

    def _wait_for_flush(self) -> bool:
        """Block (holding the condition) until something should be published; True when the
        terminal event is due."""
        while True:
            if self._terminal is not None:
                return True
            if self._buffer:
                if not self._first_flushed or self._buffered_bytes >= self._max_buffer:
                    return False
                remaining = self._last_flush + self._interval - self._clock()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            else:
                self._cond.wait()

    def _take_events(self, *, final: bool) -> list[str]:
        """Serialise the buffered text (and the terminal event) with consecutive ``seq``."""
        bodies: list[Mapping[str, Any]] = []
        text = "".join(self._buffer)
        self._buffer.clear()
        self._buffered_bytes = 0
        for start in range(0, len(text), MAX_DELTA_CHARS):
            bodies.append(delta_body(text[start : start + MAX_DELTA_CHARS]))
        if final and self._terminal is not None:
            bodies.append(self._terminal)
        events = []
        for body in bodies:
            event = with_header(body, self.conversation_id, self.turn_id, self._seq)
            events.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
            self._seq += 1
        if events:
            self._first_flushed = True
            self._last_flush = self._clock()
        return events

    def _flush(self, events: list[str]) -> None:
        for start in range(0, len(events), MAX_EVENTS_PER_PUBLISH):
            batch = events[start : start + MAX_EVENTS_PER_PUBLISH]
            self._requests += 1
            try:
                self._retries += self._publisher.publish(self.channel, batch) or 0
                self._published += len(batch)
            except Exception as err:  # a lost publish must not end the turn or the stream read
                self._failed += len(batch)
                if self._on_error:
                    self._on_error(err)
