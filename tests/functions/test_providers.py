"""Model providers: the deterministic local model, Bedrock ConverseStream mapping, and an
OpenAI-compatible streaming endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError, EventStreamError, ReadTimeoutError
from gateway.contract import ErrorCode
from gateway.providers import (
    BedrockProvider,
    Completion,
    LocalModel,
    ModelFailure,
    ModelRequest,
    OpenAICompatibleProvider,
    TextDelta,
)
from gateway.tiers import Guardrail
from gateway.usage import TokenUsage


def request(text: str = "Hello there", max_tokens: int = 512, **extra: Any) -> ModelRequest:
    messages = ({"role": "user", "content": [{"text": text}]},)
    return ModelRequest("amazon.nova-micro-v1:0", messages, max_tokens, **extra)


def collect(parts: Iterator[TextDelta | Completion]) -> tuple[str, Completion]:
    items = list(parts)
    assert isinstance(items[-1], Completion)
    assert all(isinstance(p, TextDelta) for p in items[:-1])
    return "".join(p.text for p in items[:-1]), items[-1]


# -- local model ---------------------------------------------------------------------------------


def test_the_local_model_answers_deterministically_from_the_prompt():
    first, _ = collect(LocalModel().stream(request("Tell me about tiers")))
    again, _ = collect(LocalModel().stream(request("Tell me about tiers")))
    other, _ = collect(LocalModel().stream(request("Something else")))
    assert first == again != other
    assert first.startswith("Local model reply to Tell me about tiers:")


def test_the_local_model_gives_a_512_token_answer_and_reports_usage():
    parts = list(LocalModel().stream(request(max_tokens=4096)))
    done = parts[-1]
    assert done.usage.output_tokens == 512
    assert len(parts) - 1 == 512  # one delta per token
    assert done.usage.input_tokens > 0
    assert done.stop_reason == "end_turn"


def test_the_local_model_honours_max_tokens_and_a_length_directive():
    _, capped = collect(LocalModel().stream(request(max_tokens=7)))
    assert (capped.usage.output_tokens, capped.stop_reason) == (7, "max_tokens")
    _, short = collect(LocalModel().stream(request("[tokens=12] hi")))
    assert (short.usage.output_tokens, short.stop_reason) == (12, "end_turn")


def test_the_local_model_streams_at_its_configured_pace():
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    model = LocalModel(50, sleep=sleep, clock=lambda: clock[0])
    collect(model.stream(request("[tokens=100] hi")))
    # 100 tokens at 50/s: the last one is due 99/50 s after the first
    assert clock[0] == pytest.approx(99 / 50)
    assert all(w == pytest.approx(1 / 50) for w in waits)


# -- Bedrock -------------------------------------------------------------------------------------


class FakeBedrock:
    def __init__(self, events: list[dict[str, Any]] | None = None, error: Exception | None = None):
        self.events = events or []
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def converse_stream(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error:
            raise self.error
        return {"stream": iter(self.events)}


STREAM = [
    {"messageStart": {"role": "assistant"}},
    {"contentBlockDelta": {"delta": {"text": "Hel"}, "contentBlockIndex": 0}},
    {"contentBlockDelta": {"delta": {"text": "lo"}, "contentBlockIndex": 0}},
    {"contentBlockStop": {"contentBlockIndex": 0}},
    {"messageStop": {"stopReason": "max_tokens"}},
    {
        "metadata": {
            "usage": {
                "inputTokens": 12,
                "outputTokens": 2,
                "totalTokens": 14,
                "cacheReadInputTokens": 100,
                "cacheWriteInputTokens": 50,
            },
            "metrics": {"latencyMs": 120},
        }
    },
]


def test_bedrock_text_deltas_stop_reason_and_usage_are_mapped():
    client = FakeBedrock(STREAM)
    guardrail = Guardrail("abc123guard", "2")
    text, done = collect(
        BedrockProvider(lambda: client).stream(request(max_tokens=77, guardrail=guardrail))
    )
    assert text == "Hello"
    assert done == Completion("max_tokens", TokenUsage(12, 2, 100, 50))
    (call,) = client.calls
    assert call["modelId"] == "amazon.nova-micro-v1:0"
    assert call["inferenceConfig"] == {"maxTokens": 77}
    assert call["guardrailConfig"] == {
        "guardrailIdentifier": "abc123guard",
        "guardrailVersion": "2",
    }
    assert call["messages"] == [{"role": "user", "content": [{"text": "Hello there"}]}]


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, "ConverseStream")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (client_error("ThrottlingException"), ErrorCode.MODEL_THROTTLED),
        (client_error("ServiceQuotaExceededException"), ErrorCode.MODEL_THROTTLED),
        (client_error("ModelTimeoutException"), ErrorCode.MODEL_TIMEOUT),
        (ReadTimeoutError(endpoint_url="https://bedrock"), ErrorCode.MODEL_TIMEOUT),
        (client_error("ValidationException"), ErrorCode.MODEL_ERROR),
        (client_error("AccessDeniedException"), ErrorCode.MODEL_ERROR),
    ],
)
def test_bedrock_call_errors_map_to_wire_codes(error, code):
    with pytest.raises(ModelFailure) as failure:
        list(BedrockProvider(lambda: FakeBedrock(error=error)).stream(request()))
    assert failure.value.code == code


class BreakingStream:
    """An event stream that delivers some events, then an in-stream exception."""

    def __init__(self, events: list[dict[str, Any]], error: Exception) -> None:
        self.events, self.error, self.closed = events, error, False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self.events
        raise self.error

    def close(self) -> None:
        self.closed = True


def test_a_bedrock_stream_breaking_midway_raises_after_the_deltas_it_gave():
    error = EventStreamError(
        {"Error": {"Code": "throttlingException", "Message": "slow down"}}, "ConverseStream"
    )
    stream = BreakingStream(STREAM[:2], error)

    class Client:
        def converse_stream(self, **_: Any) -> dict[str, Any]:
            return {"stream": stream}

    parts: list[Any] = []
    with pytest.raises(ModelFailure) as failure:
        for part in BedrockProvider(lambda: Client()).stream(request()):
            parts.append(part)
    assert parts == [TextDelta("Hel")]
    assert failure.value.code == ErrorCode.MODEL_THROTTLED
    assert stream.closed


def test_a_bedrock_stream_without_usage_is_a_model_error():
    with pytest.raises(ModelFailure) as failure:
        list(BedrockProvider(lambda: FakeBedrock(STREAM[:3])).stream(request()))
    assert failure.value.code == ErrorCode.MODEL_ERROR


# -- OpenAI-compatible ---------------------------------------------------------------------------


@pytest.fixture
def openai_server() -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"status": 200, "bodies": []}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            state["bodies"].append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            if state["status"] != 200:
                self.send_response(state["status"])
                self.send_header("content-length", "0")
                self.end_headers()
                return
            chunks = [
                {"choices": [{"delta": {"content": "Hi"}, "finish_reason": None}]},
                {"choices": [{"delta": {"content": " there"}, "finish_reason": "length"}]},
                {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}},
            ]
            data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data.encode())

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


def test_an_openai_compatible_stream_is_mapped(openai_server):
    provider = OpenAICompatibleProvider(openai_server["url"], model="llama3.2")
    text, done = collect(provider.stream(request(max_tokens=2)))
    assert text == "Hi there"
    assert done == Completion("max_tokens", TokenUsage(9, 2))
    (body,) = openai_server["bodies"]
    assert body["model"] == "llama3.2"
    assert body["max_tokens"] == 2 and body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "Hello there"}]


@pytest.mark.parametrize(
    ("status", "code"), [(429, ErrorCode.MODEL_THROTTLED), (500, ErrorCode.MODEL_ERROR)]
)
def test_openai_compatible_http_errors_map_to_wire_codes(openai_server, status, code):
    openai_server["status"] = status
    with pytest.raises(ModelFailure) as failure:
        list(OpenAICompatibleProvider(openai_server["url"]).stream(request()))
    assert failure.value.code == code
