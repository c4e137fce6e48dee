"""A loopback stand-in for Bedrock's ``ConverseStream``: the model both designs call in the
benchmark, through their own boto3 ``bedrock-runtime`` clients
(``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``).

It answers ``POST /model/{modelId}/converse-stream`` with the AWS event-stream encoding Bedrock uses
(each message: a prelude with total and header lengths and its CRC32, string headers
``:event-type``, ``:content-type`` and ``:message-type``, a JSON payload, a CRC32 of the whole
message), sent as one HTTP chunk per event so a client reads each as it is produced:
messageStart, one contentBlockDelta per token, contentBlockStop, messageStop, metadata. A 512-token
answer is 516 events. The event names and fields follow the ConverseStream API reference
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html); the
framing follows https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html
(event stream encoding), the same framing botocore's ``botocore/eventstream.py`` decodes.

Its time to first token and its pace are set over ``POST /_model/config``; for every call it
records when the request arrived and when the first token left (``perf_counter``, a system-wide
monotonic clock on Linux, so a measuring process can compare it with its own), so the model's own
time to first token can be taken out of a design's figure.
"""

from __future__ import annotations

import json
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ANSWER = (
    "the gateway streams each answer to the user's own channel while metering tokens against "
    "every window of the tier and records one analytics row per turn"
)
WORDS = tuple(_ANSWER.split())


def answer_tokens(count: int) -> list[str]:
    """``count`` deterministic tokens of answer text (one word and a space each)."""
    return [WORDS[i % len(WORDS)] + " " for i in range(count)]


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    # header name length (1 byte), name, value type 7 (string), value length (2 bytes), value
    return (
        bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    )


def event_message(event_type: str, payload: dict[str, Any]) -> bytes:
    """One event-stream message carrying ``payload`` as a ConverseStream event."""
    headers = (
        _header(":event-type", event_type)
        + _header(":content-type", "application/json")
        + _header(":message-type", "event")
    )
    body = json.dumps(payload, separators=(",", ":")).encode()
    prelude = struct.pack(">II", 12 + len(headers) + len(body) + 4, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + body
    return message + struct.pack(">I", zlib.crc32(message))


@dataclass
class ModelConfig:
    ttft_ms: float = 0.0  # time from the request's arrival to the first token
    tokens_per_second: float = 0.0  # 0: every token at once after the first
    tokens: int = 512  # answer length, capped by the request's maxTokens
    input_tokens: int = 12


@dataclass
class ModelCall:
    received: float
    first_token: float = 0.0
    finished: float = 0.0
    tokens: int = 0


@dataclass
class FakeBedrock:
    config: ModelConfig = field(default_factory=ModelConfig)
    calls: list[ModelCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # each chunk leaves as it is written

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                since = int(self.path.rpartition("since=")[2] or 0)
                self._json(model.calls_since(since))

            def do_POST(self) -> None:  # noqa: N802
                received = time.perf_counter()
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path.startswith("/_model/"):
                    model.configure(**json.loads(body or b"{}"))
                    self._json({"ok": True})
                elif self.path.endswith("/converse-stream"):
                    model.converse_stream(self, received, json.loads(body or b"{}"))
                else:
                    self.send_error(404)

            def _json(self, answer: Any) -> None:
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def configure(self, **values: Any) -> None:
        with self._lock:
            self.config = ModelConfig(**{**self.config.__dict__, **values})

    def calls_since(self, since: int) -> dict[str, Any]:
        with self._lock:
            return {
                "count": len(self.calls),
                "calls": [c.__dict__ for c in self.calls[since:]],
            }

    def converse_stream(self, handler: Any, received: float, request: dict[str, Any]) -> None:
        with self._lock:
            config = self.config
            call = ModelCall(received)
            self.calls.append(call)
        max_tokens = int((request.get("inferenceConfig") or {}).get("maxTokens") or config.tokens)
        tokens = answer_tokens(min(config.tokens, max_tokens))
        handler.send_response(200)
        handler.send_header("content-type", "application/vnd.amazon.eventstream")
        handler.send_header("x-amzn-requestid", f"fake-{id(call):x}")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()

        def send(event_type: str, payload: dict[str, Any]) -> None:
            data = event_message(event_type, payload)
            handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        send("messageStart", {"role": "assistant", "p": "a"})
        first_at = received + config.ttft_ms / 1000
        interval = 1 / config.tokens_per_second if config.tokens_per_second else 0.0
        for i, text in enumerate(tokens):
            _sleep_until(first_at + i * interval)
            send("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}, "p": "a"})
            if i == 0:
                call.first_token = time.perf_counter()
        send("contentBlockStop", {"contentBlockIndex": 0, "p": "a"})
        send("messageStop", {"stopReason": "end_turn", "p": "a"})
        latency = int((time.perf_counter() - received) * 1000)
        usage = {
            "inputTokens": config.input_tokens,
            "outputTokens": len(tokens),
            "totalTokens": config.input_tokens + len(tokens),
        }
        send("metadata", {"usage": usage, "metrics": {"latencyMs": latency}, "p": "a"})
        handler.wfile.write(b"0\r\n\r\n")
        call.finished = time.perf_counter()
        call.tokens = len(tokens)


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.perf_counter()
    if remaining > 0:
        time.sleep(remaining)
