"""A fake Bedrock ConverseStream for the benchmarks, and a stopwatch for time spent inside a model.

The stream has the event sequence Bedrock sends for a one-block text answer — messageStart, one
contentBlockDelta per token, contentBlockStop, messageStop, metadata — so a 512-token answer is
516 events, the figure DESIGN §10 quotes for the reference design.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_ANSWER = (
    "the gateway streams each answer to the user's own channel while metering tokens against "
    "every window of the tier and records one analytics row per turn"
)
WORDS = tuple(_ANSWER.split())


def answer_tokens(count: int) -> list[str]:
    """``count`` deterministic tokens of answer text (one word and a space each)."""
    return [WORDS[i % len(WORDS)] + " " for i in range(count)]


def converse_stream(
    tokens: int = 512, tokens_per_second: float | None = None, input_tokens: int = 12
) -> Iterator[dict[str, Any]]:
    """Bedrock-shaped stream events; paced at ``tokens_per_second`` (full speed when ``None``)."""
    interval = 1.0 / tokens_per_second if tokens_per_second else 0.0
    start = time.perf_counter()
    yield {"messageStart": {"role": "assistant"}}
    for i, text in enumerate(answer_tokens(tokens)):
        if interval:
            _sleep_until(start + (i + 1) * interval)
        yield {"contentBlockDelta": {"delta": {"text": text}, "contentBlockIndex": 0}}
    yield {"contentBlockStop": {"contentBlockIndex": 0}}
    yield {"messageStop": {"stopReason": "end_turn"}}
    yield {
        "metadata": {
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": tokens,
                "totalTokens": input_tokens + tokens,
            },
            "metrics": {"latencyMs": int((time.perf_counter() - start) * 1000)},
        }
    }


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.perf_counter()
    if remaining > 0:
        time.sleep(remaining)


class ModelStopwatch:
    """Wraps a model's stream and adds up the time spent inside it (waiting on the model).

    ``first_token_at`` is when the model produced its first item; the gateway's own time is the
    wall time of a turn less ``inside``.
    """

    def __init__(self, is_token: Callable[[Any], bool] = lambda item: True) -> None:
        self.is_token = is_token
        self.inside = 0.0
        self.calls = 0
        self.called_at: float | None = None
        self.first_token_at: float | None = None
        self.inside_before_first_token: float | None = None

    def wrap(self, stream: Iterable[Any]) -> Iterator[Any]:
        """``stream``, timed. The time to produce the stream object itself counts as inside."""
        self.calls += 1
        if self.called_at is None:
            self.called_at = time.perf_counter()
        iterator = iter(stream)
        while True:
            before = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                self.inside += time.perf_counter() - before
                return
            after = time.perf_counter()
            self.inside += after - before
            if self.first_token_at is None and self.is_token(item):
                self.first_token_at = after
                self.inside_before_first_token = self.inside
            yield item
