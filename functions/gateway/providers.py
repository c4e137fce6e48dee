"""Model providers behind one interface: a stream of text deltas ending in one completion.

* :class:`BedrockProvider` — Bedrock ``ConverseStream`` (the cloud default);
* :class:`LocalModel` — a deterministic local model for the embedded runtime, tests and
  benchmarks (paced replies, reported usage);
* :class:`OpenAICompatibleProvider` — an OpenAI-compatible ``/chat/completions`` endpoint
  (Ollama, vLLM) for the local runtime.

A provider either yields ``TextDelta`` parts followed by exactly one ``Completion``, or raises
:class:`ModelFailure` carrying a wire error code. AWS and HTTP libraries are imported only by
the providers that need them, when they first run.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gateway.contract import ErrorCode
from gateway.model import Completion, ModelFailure, ModelRequest, TextDelta
from gateway.ports import ModelProvider
from gateway.token_bound import estimate_tokens
from gateway.usage import TokenUsage

__all__ = [
    "BedrockProvider",
    "Completion",
    "LocalModel",
    "ModelFailure",
    "ModelProvider",
    "ModelRequest",
    "OpenAICompatibleProvider",
    "TextDelta",
]


# ---------------------------------------------------------------------------------------------
# Bedrock ConverseStream

_THROTTLED = {"throttlingexception", "servicequotaexceededexception", "toomanyrequestsexception"}
_TIMED_OUT = {"modeltimeoutexception"}


def classify_bedrock_error(error: BaseException) -> ErrorCode:
    """Map a botocore error (raised by the call or inside the event stream) to a wire code."""
    from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

    if isinstance(error, ReadTimeoutError | ConnectTimeoutError):
        return ErrorCode.MODEL_TIMEOUT
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "")).lower()
        if code in _THROTTLED:
            return ErrorCode.MODEL_THROTTLED
        if code in _TIMED_OUT:
            return ErrorCode.MODEL_TIMEOUT
    return ErrorCode.MODEL_ERROR


class BedrockProvider:
    """Bedrock ``ConverseStream`` with ``maxTokens`` and an optional guardrail."""

    name = "bedrock"

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client

    def stream(self, request: ModelRequest) -> Iterator[TextDelta | Completion]:
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs = _converse_arguments(request)
        if request.guardrail:
            kwargs["guardrailConfig"] = {
                "guardrailIdentifier": request.guardrail.identifier,
                "guardrailVersion": request.guardrail.version,
            }
        stop_reason = "end_turn"
        try:
            response = self._client().converse_stream(**kwargs)
            events = response["stream"]
            try:
                for event in events:
                    if "contentBlockDelta" in event:
                        text = event["contentBlockDelta"].get("delta", {}).get("text")
                        if text:
                            yield TextDelta(text)
                    elif "messageStop" in event:
                        stop_reason = event["messageStop"].get("stopReason", stop_reason)
                    elif "metadata" in event:
                        yield Completion(stop_reason, _bedrock_usage(event["metadata"]))
                        return
            finally:
                close = getattr(events, "close", None)
                if close:
                    close()
        except (ClientError, BotoCoreError) as err:
            raise ModelFailure(classify_bedrock_error(err), type(err).__name__) from err
        raise ModelFailure(ErrorCode.MODEL_ERROR, "stream ended without usage metadata")


def _converse_arguments(request: ModelRequest) -> dict[str, Any]:
    """ConverseStream's arguments: ``system`` and ``inferenceConfig`` (maxTokens, temperature,
    topP, stopSequences) as the API reference names them
    (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html)."""
    inference: dict[str, Any] = {"maxTokens": request.max_tokens}
    if request.temperature is not None:
        inference["temperature"] = request.temperature
    if request.top_p is not None:
        inference["topP"] = request.top_p
    if request.stop_sequences:
        inference["stopSequences"] = list(request.stop_sequences)
    kwargs: dict[str, Any] = {
        "modelId": request.model_id,
        "messages": list(request.messages),
        "inferenceConfig": inference,
    }
    if request.system:
        kwargs["system"] = [{"text": text} for text in request.system]
    return kwargs


def _bedrock_usage(metadata: dict[str, Any]) -> TokenUsage:
    usage = metadata.get("usage") or {}
    return TokenUsage(
        input_tokens=int(usage.get("inputTokens", 0)),
        output_tokens=int(usage.get("outputTokens", 0)),
        cache_read_tokens=int(usage.get("cacheReadInputTokens", 0)),
        cache_write_tokens=int(usage.get("cacheWriteInputTokens", 0)),
    )


# ---------------------------------------------------------------------------------------------
# The deterministic local model

#: Length of a local-model answer unless the prompt asks for another with ``[tokens=N]``.
LOCAL_REPLY_TOKENS = 512
_LENGTH_DIRECTIVE = re.compile(r"\[tokens=(\d{1,5})\]")
_VOCABULARY = (
    "gateway",
    "stream",
    "token",
    "model",
    "answer",
    "tier",
    "limit",
    "channel",
    "window",
    "reservation",
    "relay",
    "event",
    "cache",
    "prompt",
    "user",
    "reply",
    "local",
    "metered",
    "coalesced",
    "bucket",
    "month",
    "daily",
    "signed",
    "pooled",
    "delta",
    "usage",
    "settle",
    "release",
    "budget",
    "latency",
    "request",
    "region",
    "function",
    "table",
    "record",
)


def local_input_tokens(messages: Sequence[dict[str, Any]]) -> int:
    """Input tokens the local model reports: about four characters per token per message."""
    total = 0
    for message in messages:
        text = "".join(block.get("text", "") for block in message.get("content", ()))
        total += estimate_tokens(len(text)) + 3
    return total


def local_reply(prompt: str) -> Iterator[str]:
    """The local model's endless, deterministic token stream for ``prompt``."""
    words = prompt.split()[:8]
    yield "Local"
    yield " model"
    yield " reply"
    yield " to"
    for word in words:
        yield " " + word.strip("[]")[:24]
    yield ":"
    seed = hashlib.sha256(prompt.encode("utf-8")).digest()
    counter = 0
    while True:
        block = hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        for i, byte in enumerate(block):
            word = _VOCABULARY[byte % len(_VOCABULARY)]
            yield f" {word}." if (counter * 32 + i) % 12 == 11 else f" {word}"
        counter += 1


class LocalModel:
    """A deterministic model: the reply is derived from the last user message, one word per
    token, paced at ``tokens_per_second`` (0 streams as fast as possible)."""

    name = "local"

    def __init__(
        self,
        tokens_per_second: float = 0.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = 1.0 / tokens_per_second if tokens_per_second > 0 else 0.0
        self._sleep = sleep
        self._clock = clock

    def stream(self, request: ModelRequest) -> Iterator[TextDelta | Completion]:
        prompt = _last_user_text(request.messages)
        asked = _LENGTH_DIRECTIVE.search(prompt)
        length = int(asked.group(1)) if asked else LOCAL_REPLY_TOKENS
        produced = min(length, request.max_tokens)
        started = self._clock()
        for index, token in enumerate(local_reply(prompt)):
            if index >= produced:
                break
            if self._interval:
                wait = started + index * self._interval - self._clock()
                if wait > 0:
                    self._sleep(wait)
            yield TextDelta(token)
        stop = "max_tokens" if length > request.max_tokens else "end_turn"
        usage = TokenUsage(local_input_tokens(request.messages), produced)
        yield Completion(stop, usage)


def _last_user_text(messages: Sequence[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return "".join(block.get("text", "") for block in message.get("content", ()))
    return ""


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible endpoints (Ollama, vLLM)

_FINISH = {"stop": "end_turn", "length": "max_tokens", "content_filter": "content_filtered"}


class OpenAICompatibleProvider:
    """Streams ``POST {base_url}/chat/completions`` (server-sent events). ``model`` replaces
    the tier's model id when the server names its models differently."""

    name = "openai"

    def __init__(self, base_url: str, *, model: str = "", timeout: float = 60.0) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._timeout = timeout
        self._pool: Any = None

    def _http(self) -> Any:
        if self._pool is None:
            import urllib3

            self._pool = urllib3.PoolManager(maxsize=4, retries=False)
        return self._pool

    def stream(self, request: ModelRequest) -> Iterator[TextDelta | Completion]:
        import urllib3

        body = {
            "model": self._model or request.model_id,
            "messages": [
                {
                    "role": m["role"],
                    "content": "".join(b.get("text", "") for b in m["content"]),
                }
                for m in request.messages
            ],
            "max_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        try:
            response = self._http().request(
                "POST",
                self._url,
                body=json.dumps(body).encode(),
                headers={"content-type": "application/json", "accept": "text/event-stream"},
                preload_content=False,
                timeout=urllib3.Timeout(connect=5.0, read=self._timeout),
            )
        except urllib3.exceptions.TimeoutError as err:
            raise ModelFailure(ErrorCode.MODEL_TIMEOUT, type(err).__name__) from err
        except urllib3.exceptions.HTTPError as err:
            raise ModelFailure(ErrorCode.MODEL_ERROR, type(err).__name__) from err
        if response.status == 429:
            response.release_conn()
            raise ModelFailure(ErrorCode.MODEL_THROTTLED, "HTTP 429")
        if response.status >= 400:
            response.release_conn()
            raise ModelFailure(ErrorCode.MODEL_ERROR, f"HTTP {response.status}")
        produced: list[str] = []
        stop_reason = "end_turn"
        usage: TokenUsage | None = None
        try:
            for line in _sse_lines(response):
                if line == "[DONE]":
                    break
                chunk = json.loads(line)
                for choice in chunk.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        produced.append(text)
                        yield TextDelta(text)
                    if choice.get("finish_reason"):
                        stop_reason = _FINISH.get(choice["finish_reason"], choice["finish_reason"])
                if chunk.get("usage"):
                    u = chunk["usage"]
                    usage = TokenUsage(
                        int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0))
                    )
        except urllib3.exceptions.TimeoutError as err:
            raise ModelFailure(ErrorCode.MODEL_TIMEOUT, type(err).__name__) from err
        except (urllib3.exceptions.HTTPError, ValueError) as err:
            raise ModelFailure(ErrorCode.MODEL_ERROR, type(err).__name__) from err
        finally:
            response.release_conn()
        if usage is None:
            usage = TokenUsage(
                local_input_tokens(request.messages), estimate_tokens(len("".join(produced)))
            )
        yield Completion(stop_reason, usage)


def _sse_lines(response: Any) -> Iterator[str]:
    buffer = b""
    for chunk in response.stream(4096):
        buffer += chunk
        while b"\n" in buffer:
            raw, buffer = buffer.split(b"\n", 1)
            line = raw.decode("utf-8").strip()
            if line.startswith("data:"):
                yield line[5:].strip()
