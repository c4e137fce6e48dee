"""One turn's answer as an OpenAI Chat Completions response (the core's ``TurnOutput``).

Streamed (``stream: true``), the answer is server-sent events written as the model produces
them: nothing is sent before the first delta, so a turn refused at admission still gets its own
status (403, 429...) with OpenAI's error envelope. The first delta goes at once; later ones are
gathered for at most :data:`STREAM_COALESCE_SECONDS` into one chunk, so a fast model's hundreds of
tokens cost a handful of writes rather than one each (the clients join the chunks' text as they
come, whatever their size). Not streamed, the deltas are collected and sent
as one ``chat.completion`` when the turn ends. Either way a write that fails means the client has
gone: :meth:`HttpTurnOutput.cancelled` then says so, and the core closes the model stream and
charges what was produced.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from gateway.contract import ErrorCode
from gateway.openai import responses
from gateway.ports import OutputReport
from gateway.turn_io import TurnDone, TurnFailed, TurnOutcome


class ResponseStream(Protocol):
    """The HTTP response of one request, as a server gives it to the door: a status and headers
    once, then body bytes. ``write`` raises ``OSError`` (``ConnectionError``) once the client has
    gone."""

    def start(self, status: int, headers: Mapping[str, str]) -> None: ...

    def write(self, chunk: bytes) -> None: ...

    def gone(self) -> bool:
        """Whether the client is known to have closed the connection, without writing."""
        ...


def send_error(stream: ResponseStream, error: responses.OpenAiError) -> bool:
    """Answer with ``error`` (status, headers, JSON body); False if the client had gone."""
    try:
        stream.start(error.status, {"Content-Type": responses.JSON_CONTENT_TYPE, **error.headers})
        stream.write(error.json_bytes())
    except OSError:
        return False
    return True


def error_for(failure: TurnFailed, now: float) -> responses.OpenAiError:
    """The OpenAI error for a failed turn; a window or rate that frees up later gives
    ``Retry-After`` (seconds until it does)."""
    param = failure.fields.get("param")
    resets_at = failure.resets_at or failure.fields.get("resetsAt")
    retry_after = None
    if isinstance(resets_at, str) and failure.code in (
        ErrorCode.RATE_LIMITED,
        ErrorCode.LIMIT_EXCEEDED,
    ):
        retry_after = _seconds_until(resets_at, now)
    return responses.error(
        failure.code,
        failure.message,
        param=param if isinstance(param, str) else None,
        retry_after_seconds=retry_after,
    )


def _seconds_until(iso: str, now: float) -> float | None:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() - now


#: How long a streamed answer's text may gather before it is written: short enough to read as a
#: smooth stream (20 updates a second), long enough that a model producing faster than that shares
#: writes. The text is written when the next delta arrives after the interval, or when the turn
#: ends, so no timer thread is needed; at worst a tail waits for the model's next token.
STREAM_COALESCE_SECONDS = 0.05

#: A streamed answer's headers: server-sent events, never cached by anything in between.
SSE_HEADERS: Mapping[str, str] = {
    "Content-Type": responses.SSE_CONTENT_TYPE,
    "Cache-Control": "no-cache",
}


class HttpTurnOutput:
    """Renders one turn as a Chat Completions response on ``stream``."""

    def __init__(
        self,
        stream: ResponseStream,
        *,
        model: str,
        streamed: bool,
        include_usage: bool = False,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        coalesce_seconds: float = STREAM_COALESCE_SECONDS,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._monotonic = monotonic
        self._coalesce = coalesce_seconds
        self._pending: list[str] = []
        self._last_write = 0.0
        self._model = model
        self._chunks = (
            responses.ChunkStream(model, int(clock()), include_usage=include_usage)
            if streamed
            else None
        )
        self._texts: list[str] = []
        self._started = False
        self._gone = False
        self._written = 0
        self._failed = 0

    # -- TurnOutput ----------------------------------------------------------------------------

    def delta(self, text: str) -> None:
        if self._chunks is None:
            self._texts.append(text)
            return
        now = self._monotonic()
        if not self._started:
            self._start(200, SSE_HEADERS)
            self._write(self._chunks.start())
        elif now - self._last_write < self._coalesce:
            self._pending.append(text)
            return
        self._pending.append(text)
        self._flush_pending(now)

    def _flush_pending(self, now: float) -> None:
        """Write the gathered text as one chunk."""
        if self._chunks is None or not self._pending:
            return
        text, self._pending = "".join(self._pending), []
        self._write(self._chunks.delta(text))
        self._last_write = now

    def cancelled(self) -> bool:
        if not self._gone and self._stream.gone():
            self._gone = True
        return self._gone

    def finish(self, outcome: TurnOutcome) -> OutputReport:
        if isinstance(outcome, TurnDone):
            self._done(outcome)
        else:
            self._failed_turn(outcome)
        if self._gone:
            # The client left: what it got was cut short; the record says so.
            return OutputReport(
                events_published=self._written,
                events_failed=self._failed,
                terminal_type="error" if isinstance(outcome, TurnFailed) else "done",
                terminal_code=outcome.code.value if isinstance(outcome, TurnFailed) else None,
            )
        return OutputReport(events_published=self._written, events_failed=self._failed)

    # -- rendering -----------------------------------------------------------------------------

    def _done(self, done: TurnDone) -> None:
        usage = done.usage
        if self._chunks is None:
            body = responses.chat_completion(
                id=responses.completion_id(),
                created=int(self._clock()),
                model=self._model,
                text="".join(self._texts),
                stop_reason=done.stop_reason,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
            )
            self._start(200, {"Content-Type": responses.JSON_CONTENT_TYPE})
            self._write(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
            return
        if not self._started:
            self._start(200, SSE_HEADERS)
            self._write(self._chunks.start())
        self._flush_pending(self._monotonic())
        self._write(
            self._chunks.finish(done.stop_reason)
            + self._chunks.end(usage.input_tokens, usage.output_tokens)
        )

    def _failed_turn(self, failure: TurnFailed) -> None:
        error = error_for(failure, self._clock())
        if self._started:
            # Headers are out: the error is one event of the stream, which the SDKs raise.
            self._flush_pending(self._monotonic())
            self._write(error.sse_bytes())
            return
        self._start(error.status, {"Content-Type": responses.JSON_CONTENT_TYPE, **error.headers})
        self._write(error.json_bytes())

    def _start(self, status: int, headers: Mapping[str, str]) -> None:
        self._started = True
        if self._gone:
            return
        try:
            self._stream.start(status, headers)
        except OSError:
            self._gone = True

    def _write(self, chunk: bytes) -> None:
        if self._gone:
            self._failed += 1
            return
        try:
            self._stream.write(chunk)
        except OSError:
            self._gone = True
            self._failed += 1
            return
        self._written += 1
