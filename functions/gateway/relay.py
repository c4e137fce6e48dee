"""The relay: a turn's outbound events, numbered and coalesced, on the user's outbound channel.

The first delta goes out at once, published by the thread that reads the model stream (a
hand-over to another thread could wait up to the interpreter's switch interval, 5 ms, while the
reader keeps the interpreter busy); later deltas are coalesced into one event per flush interval
(or sooner when the buffer passes a few KB), and a publish carries at most five events. From the
second delta on a dedicated sender thread publishes, so the model stream is read at full speed
and to its end even while a publish is slow, retrying or failing.

The terminal event always gets a publish of its own, after every delta, and a second one if
that is refused. ``seq`` counts the
events that reached the client, so it stays gap-free: once a publish carrying deltas is refused
for good (after the publisher's retries), the answer the client holds is incomplete, so the relay
publishes no more deltas and ends the turn with the terminal numbered after the last event
delivered — an ``internal_error`` (retryable, with the ``done`` event's ``limits``) in place of
``done``, so the client never takes a broken answer for a whole one. (Only if the service
accepted some events of a batch and refused earlier ones can the client see a gap in ``seq``;
the terminal is then that error too.)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.contract import MAX_EVENTS_PER_PUBLISH, ErrorCode, EventType
from gateway.outbound import delta_body, error_body, with_header
from gateway.wire import SURROGATES

#: Publish before the flush interval is up once the buffered text passes this size.
MAX_BUFFER_BYTES = 4096
#: Split a delta larger than this into several events (AppSync caps an event at 240 KB).
MAX_DELTA_CHARS = 32_000
#: The longest ``finish`` waits for the sender thread to publish what is left and the terminal.
#: Each publish is bounded by its publisher (gateway.publisher: 4 attempts of at most 2 s connect
#: and 5 s read, with backoff, about 30 s); what is left at the end is a few publishes at most.
#: A sender still busy after this is abandoned (a daemon thread) and the terminal reported lost.
FINISH_TIMEOUT_SECONDS = 120.0


#: What the client reads in place of ``done`` when part of the answer never reached it.
LOST_ANSWER_MESSAGE = "Part of the answer could not be delivered; please retry."


class PublishError(Exception):
    """Events could not be published (after the publisher's own retries). ``delivered`` are
    the indexes, in the refused batch, of events the endpoint did accept."""

    def __init__(self, message: str, delivered: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.delivered = delivered


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
    #: The terminal event's ``type`` and error ``code`` as the client got them (``None`` when
    #: it could not be delivered at all).
    terminal_type: str | None = None
    terminal_code: str | None = None


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
        request_id: str = "",
    ) -> None:
        self.channel = channel
        self.request_id = request_id
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
        self._delivered_terminal: Mapping[str, Any] | None = None
        #: A publish carrying deltas was refused for good: the client's answer has a hole.
        self._broken = False
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
        first: list[Mapping[str, Any]] = []
        with self._cond:
            if self._terminal is not None:
                return
            self._buffer.append(text)
            self._buffered_bytes += len(text.encode("utf-8", "surrogatepass"))
            if not self._first_flushed and self._sender is None:
                first = self._take_bodies(final=False)
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
            sender.join(FINISH_TIMEOUT_SECONDS)
            if sender.is_alive() and self._on_error is not None:
                self._on_error(TimeoutError("the relay's sender did not finish in time"))
        else:
            self._flush(self._take_bodies(final=True))
        self._finished = True
        return self.report()

    def report(self) -> RelayReport:
        sent = self._delivered_terminal
        return RelayReport(
            self._published,
            self._failed,
            self._requests,
            self._retries,
            terminal_type=str(sent["type"]) if sent else None,
            terminal_code=str(sent["code"]) if sent and "code" in sent else None,
        )

    # -- sender -----------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                final = self._wait_for_flush()
                bodies = self._take_bodies(final=final)
            self._flush(bodies)
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

    def _take_bodies(self, *, final: bool) -> list[Mapping[str, Any]]:
        """The buffered text as delta bodies (and the terminal body when due)."""
        bodies: list[Mapping[str, Any]] = []
        text = "".join(self._buffer)
        self._buffer.clear()
        self._buffered_bytes = 0
        for start in range(0, len(text), MAX_DELTA_CHARS):
            bodies.append(delta_body(text[start : start + MAX_DELTA_CHARS]))
        if final and self._terminal is not None:
            bodies.append(self._terminal)
        if bodies:
            self._first_flushed = True
            self._last_flush = self._clock()
        return bodies

    def _flush(self, bodies: list[Mapping[str, Any]]) -> None:
        """Publish ``bodies`` in order, at most five a request, numbering each from the count
        of events that reached the client. The terminal event goes in a request of its own, so
        it is never accepted while deltas before it were refused: when they were, it becomes
        an error (``_final``)."""
        terminal = bodies[-1] if bodies and bodies[-1] is self._terminal else None
        deltas = bodies[:-1] if terminal is not None else bodies
        if self._broken:
            self._failed += len(deltas)  # dropped: they would follow a hole in the answer
            deltas = []
        for start in range(0, len(deltas), MAX_EVENTS_PER_PUBLISH):
            batch = deltas[start : start + MAX_EVENTS_PER_PUBLISH]
            if len(self._publish(batch)) < len(batch):
                self._broken = True
                self._failed += len(deltas) - start - len(batch)
                break
        if terminal is not None and not self._publish([self._final(terminal)]):
            # A second chance (after the publisher's own retries) for the one event the
            # client cannot do without.
            self._publish([self._final(terminal)])

    def _final(self, terminal: Mapping[str, Any]) -> Mapping[str, Any]:
        if not self._broken or terminal.get("type") != EventType.DONE.value:
            return terminal
        return error_body(
            ErrorCode.INTERNAL_ERROR,
            self.request_id,
            LOST_ANSWER_MESSAGE,
            limits=terminal.get("limits"),
        )

    def _publish(self, bodies: list[Mapping[str, Any]]) -> set[int]:
        """One publish request; the indexes of ``bodies`` that reached the client."""
        events = [
            _publishable(with_header(body, self.conversation_id, self.turn_id, self._seq + i))
            for i, body in enumerate(bodies)
        ]
        self._requests += 1
        try:
            self._retries += self._publisher.publish(self.channel, events) or 0
            delivered = set(range(len(events)))
        except Exception as err:  # a lost publish must not end the turn or the stream read
            delivered = set(getattr(err, "delivered", ()) or ()) & set(range(len(events)))
            self._failed += len(events) - len(delivered)
            if self._on_error:
                self._on_error(err)
        if delivered:
            # Later events follow the last one the client holds, so seq never repeats.
            self._seq += max(delivered) + 1
            self._published += len(delivered)
        if bodies and (len(bodies) - 1) in delivered and bodies[-1].get("type") != "delta":
            self._delivered_terminal = bodies[-1]
        return delivered


def _publishable(event: Mapping[str, Any]) -> str:
    """The event as JSON text of valid Unicode: a lone surrogate (from a model, say) becomes
    U+FFFD rather than getting the whole publish refused."""
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return SURROGATES.sub("\ufffd", text) if SURROGATES.search(text) else text
