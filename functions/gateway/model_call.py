"""The model step of a turn: stream the answer to the door's output, with fallback and stop.

The tier's fallback model is tried only while nothing has been sent: after the first delta a
failure is the answer, never a silent retry. The stream is always read to its end, whatever the
output does, because its last part carries the usage the turn is charged. A turn its user stops
(:mod:`gateway.stop`), or whose client has gone, closes the model stream and is charged what was
produced.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from gateway.contract import ErrorCode
from gateway.model import Completion, ModelFailure, ModelRequest, TextDelta
from gateway.ports import Clock, ModelProvider, TurnLog, TurnOutput
from gateway.stop import StopWatch, cut_short


@dataclass
class ModelRun:
    """What one model step did: its completion or failure, and what it produced on the way."""

    model_id: str
    completion: Completion | None = None
    failure: ModelFailure | None = None
    produced_chars: int = 0
    first_token_at: float | None = None
    throttled_models: list[str] = field(default_factory=list)
    #: The text sent to the client, exactly as produced.
    answer: list[str] = field(default_factory=list)


class ModelCall:
    """Streams one turn's answer from the first model that produces one."""

    def __init__(
        self,
        provider: ModelProvider,
        output: TurnOutput,
        watch: StopWatch,
        *,
        clock: Clock,
        log: TurnLog,
        turn_id: str,
    ) -> None:
        self._provider = provider
        self._output = output
        self._watch = watch
        self._clock = clock
        self._log = log
        self._turn_id = turn_id

    def run(
        self,
        request: ModelRequest,
        fallback_model: str | None,
        opened: Iterator[TextDelta | Completion] | None = None,
    ) -> ModelRun:
        """Stream ``request`` (whose stream may already be ``opened`` by speculation), then
        the fallback model if the first produced nothing."""
        candidates = [request.model_id]
        if fallback_model and fallback_model != request.model_id:
            candidates.append(fallback_model)
        run = ModelRun(request.model_id)
        for model_id in candidates:
            run.model_id = model_id
            attempt = request.with_model(model_id)
            parts = opened if opened is not None else self._provider.stream(attempt)
            opened = None
            run.failure = self._attempt(parts, attempt, run)
            if run.failure is None:
                return run
            if run.failure.code == ErrorCode.MODEL_THROTTLED:
                run.throttled_models.append(model_id)
            if run.produced_chars:
                break  # after the first delta a failure is the answer, never a silent retry
            self._log.warning(
                "model call failed",
                extra={"model": model_id, "error_code": run.failure.code.value},
            )
        return run

    def _attempt(
        self, parts: Iterable[TextDelta | Completion], request: ModelRequest, run: ModelRun
    ) -> ModelFailure | None:
        """One model's stream to its end; sets ``run.completion`` or returns the failure."""
        try:
            for part in parts:
                if isinstance(part, TextDelta):
                    self._relay(part.text, run)
                elif isinstance(part, Completion):
                    run.completion = part
                    return None
                if self._watch.stopped() or self._output.cancelled():
                    self._log.info("turn stopped", extra={"turn": self._turn_id})
                    run.completion = cut_short(parts, request, run.produced_chars, self._log)
                    return None
            return ModelFailure(ErrorCode.MODEL_ERROR, "stream ended without completion")
        except ModelFailure as err:
            return err
        except Exception as err:  # a provider bug is a model error, not a crashed turn
            self._log.exception("model provider failed", extra={"model": request.model_id})
            return ModelFailure(ErrorCode.MODEL_ERROR, type(err).__name__)

    def _relay(self, text: str, run: ModelRun) -> None:
        if run.first_token_at is None:
            run.first_token_at = self._clock.monotonic()
        run.produced_chars += len(text)
        run.answer.append(text)
        self._output.delta(text)
