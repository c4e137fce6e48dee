"""Speculation: open the model stream while admission is in flight.

A model's first token takes hundreds of milliseconds; admission takes one usage-store round trip.
When a warm function's last-known usage of the user predicts admission with margin, the turn
opens the model call on a worker thread first, then admits: the first token then waits for
whichever is slower, not for both in turn. Nothing is published before admission, and a turn
that admission refuses (or that the store admits with a smaller output allowance than the call
was opened with) cancels the call. A cancelled call still costs its input tokens at the model
— counted in the ``SpeculativeCallsCancelled`` / ``SpeculativeInputTokens`` metrics and the
analytics record — which is why the prediction must leave margin:

* the kept usage item admits the turn with the tier's whole ``maxOutputTokensPerTurn``, and would
  still admit one more turn of the same worst case in every window;
* the request rate leaves room for one more turn, and no other turn of the user is running;
* the turn is not a first message that could be served a prepared response.

Only the first part crosses threads: the worker ends once the model has produced it, and the
turn's own thread reads the rest of the stream.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gateway.metering import Admission
from gateway.model import ModelRequest
from gateway.ports import ModelProvider
from gateway.rates import requests_in_window
from gateway.tiers import WINDOWS, Tier
from gateway.usage import UsageSnapshot

if TYPE_CHECKING:
    from gateway.admission import TurnPlan

#: The longest a cancelled call is waited for to close (its first part has to arrive first: the
#: model's HTTP stream can only be closed between reads).
CANCEL_WAIT_SECONDS = 5.0
_INPUT = ("dailyInputTokens", "monthlyInputTokens")


def predicts_admission_with_margin(
    tier: Tier, known: UsageSnapshot, predicted: Admission, input_bound: int, now: int
) -> bool:
    """Whether a kept usage item admits the turn with room for another of the same size."""
    if predicted.reservation is None:
        return False
    if predicted.max_output_tokens < tier.max_output_tokens_per_turn:
        return False  # near an output limit the real admission may allow less
    used = known.committed(now)
    for window in WINDOWS:
        need = input_bound if window in _INPUT else tier.max_output_tokens_per_turn
        if used[window] + 2 * need > tier.limit(window):
            return False
    if requests_in_window(known.requests, now) + 2 > tier.requests_per_minute:
        return False
    # Another turn of the user running (a script, a burst) is no time to bet on the model.
    return not known.live_reservations(now) and tier.max_concurrent_turns >= 2


def speculate(
    provider: ModelProvider, plan: TurnPlan, request: ModelRequest, now: int
) -> SpeculativeCall | None:
    """Open ``request`` now, with the output the predicted admission allows, if the plan's kept
    usage predicts admission with margin; else None."""
    if plan.known is None or plan.predicted is None:
        return None
    if not predicts_admission_with_margin(
        plan.tier, plan.known, plan.predicted, plan.input_bound_on(plan.known, now), now
    ):
        return None
    opened = replace(request, max_tokens=plan.predicted.max_output_tokens)
    return SpeculativeCall(provider, opened, plan.input_estimate)


class SpeculativeCall:
    """One model call opened before its turn is admitted; :meth:`take` the stream once admitted,
    or :meth:`cancel` it."""

    def __init__(self, provider: ModelProvider, request: ModelRequest, input_tokens: int) -> None:
        self.request = request
        #: The input the call costs at the model if cancelled (an estimate: it never reports).
        self.input_tokens = input_tokens
        self._provider = provider
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stream: Iterator[Any] | None = None
        self._first: list[Any] = []
        self._error: BaseException | None = None
        self._cancelled = False
        self._worker = threading.Thread(target=self._open, name="speculative-call", daemon=True)
        self._worker.start()

    def _open(self) -> None:
        stream: Iterator[Any] | None = None
        try:
            stream = iter(self._provider.stream(self.request))
            first = [next(stream)]
        except StopIteration:
            first = []
        except BaseException as err:  # handed to the turn, which classifies model failures
            first = []
            self._error = err
        with self._lock:
            self._stream, self._first = stream, first
            cancelled = self._cancelled
        self._ready.set()
        if cancelled:
            _close(stream)

    def take(self) -> Iterator[Any]:
        """The model's stream, as ``provider.stream(request)`` would yield it."""
        self._ready.wait()
        if self._error is not None:
            raise self._error
        yield from self._first
        if self._stream is not None:
            yield from self._stream

    def cancel(self, wait: float = CANCEL_WAIT_SECONDS) -> None:
        """Stop the call: close its stream now if it is open, else as soon as it opens (waiting
        up to ``wait`` seconds, so a function is not frozen with the model still generating)."""
        with self._lock:
            self._cancelled = True
            ready = self._ready.is_set()
        if ready:
            _close(self._stream)
        else:
            self._worker.join(wait)


def _close(stream: Iterator[Any] | None) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()
