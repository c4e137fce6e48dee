"""How a streamed answer reaches the client: the first delta at once, later text gathered into a
chunk per interval, nothing gathered ever left behind at the end, an error, or a client that
leaves."""

from __future__ import annotations

import json
from collections.abc import Mapping

from gateway.contract import ErrorCode
from gateway.openai.output import HttpTurnOutput
from gateway.turn_io import TurnDone, TurnFailed
from gateway.usage import TokenUsage


class Recorder:
    """A ResponseStream that keeps what was written, chunk by chunk."""

    def __init__(self) -> None:
        self.status = 0
        self.writes: list[bytes] = []
        self.closed = False

    def start(self, status: int, headers: Mapping[str, str]) -> None:
        self.status = status

    def write(self, chunk: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("gone")
        self.writes.append(chunk)

    def gone(self) -> bool:
        return self.closed

    def texts(self) -> list[str]:
        """The answer text of each written chunk that carries some."""
        out = []
        for write in self.writes:
            for line in write.decode().splitlines():
                if not line.startswith("data: {"):
                    continue
                for choice in json.loads(line[6:]).get("choices", []):
                    if choice.get("delta", {}).get("content"):
                        out.append(choice["delta"]["content"])
        return out


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def done(output_tokens: int) -> TurnDone:
    usage = TokenUsage(input_tokens=3, output_tokens=output_tokens)
    return TurnDone(stop_reason="end_turn", model_id="m", usage=usage, cached=False, limits={})


def streamed(stream: Recorder, clock: Clock) -> HttpTurnOutput:
    return HttpTurnOutput(stream, model="m", streamed=True, monotonic=clock, coalesce_seconds=0.05)


def test_the_first_delta_goes_at_once_and_later_ones_share_a_chunk_per_interval():
    stream, clock = Recorder(), Clock()
    output = streamed(stream, clock)
    for at, text in ((0.0, "A"), (0.01, "b"), (0.02, "c"), (0.06, "d"), (0.07, "e")):
        clock.now = 100.0 + at
        output.delta(text)
    assert stream.texts() == ["A", "bcd"]  # "e" is gathering
    output.finish(done(5))
    assert stream.texts() == ["A", "bcd", "e"]
    assert stream.writes[-1].endswith(b"data: [DONE]\n\n")


def test_gathered_text_is_written_before_an_error_event():
    stream, clock = Recorder(), Clock()
    output = streamed(stream, clock)
    output.delta("Hel")
    clock.now += 0.01
    output.delta("lo")
    output.finish(TurnFailed(code=ErrorCode.INTERNAL_ERROR, message="the model failed"))
    assert stream.texts() == ["Hel", "lo"]
    assert b'"error"' in stream.writes[-1]


def test_a_slow_model_gets_a_chunk_per_delta():
    stream, clock = Recorder(), Clock()
    output = streamed(stream, clock)
    for k in range(4):
        clock.now = 100.0 + k * 0.1  # 10 tokens a second
        output.delta(f"t{k} ")
    assert stream.texts() == ["t0 ", "t1 ", "t2 ", "t3 "]


def test_a_client_that_left_is_seen_and_its_unsent_text_counted_failed():
    stream, clock = Recorder(), Clock()
    output = streamed(stream, clock)
    output.delta("one ")
    stream.closed = True
    assert output.cancelled()
    clock.now += 0.1
    output.delta("two ")
    report = output.finish(done(2))
    assert stream.texts() == ["one "]
    assert report.terminal_type == "done" and report.events_failed >= 1
