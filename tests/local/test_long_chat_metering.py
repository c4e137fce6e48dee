"""A long English chat through ``python -m local`` (what ``make dev`` runs) uses its whole daily
input allowance: the history the model already counted is reserved at its count, and the client
trims what it sends to what is left, as the web UI does (docs/web-ui.md). Each runs on the local
model and on a model that reports what a real tokenizer (Mistral's Tekken) counts."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from gateway.metering import MINIMAL_TURN_INPUT_TOKENS
from gateway.providers import local_input_tokens

from tests.local.gateway_harness import Gateway, connect, start_gateway

pytestmark = pytest.mark.slow

STACK = Path(__file__).with_name("long-chat-stack.yaml")
DAILY_INPUT = 20_000
#: What the web UI reckons a message the gateway has not counted costs, beyond its bytes, and a
#: request beyond its messages (the gateway's own framing allowance).
MESSAGE_COST, REQUEST_COST = 16, 32
#: What one event may carry (the stack's maxMessages and maxMessageChars defaults).
MAX_MESSAGES, MAX_CHARS = 40, 16_000
SENTENCES = (
    "Could you explain how the reservation of a turn works when the conversation is long",
    "and why the gateway keeps a record of what the model already counted for each chat",
    "then tell me what happens at the edge of the daily allowance, with a short example",
)


# About 100 tokens, as long as the local model's answers here, so both chats reach the allowance
# within the 40 messages an event may carry.
ANSWER = 3 * (
    "A reservation holds the most a turn can use until the model reports what it used; the "
    "gateway then charges the real count and gives the rest back to the allowance. "
)


class TokenizerModel(ThreadingHTTPServer):
    """An OpenAI-compatible model on loopback that answers every turn with :data:`ANSWER` and
    reports usage as Mistral's Tekken tokenizer counts it: the chat request's tokens, template
    included, and the answer's."""

    def __init__(self) -> None:
        from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

        self.tokenizer = MistralTokenizer.v3(is_tekken=True)
        super().__init__(("127.0.0.1", 0), _TokenizerHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def usage(self, messages: list[dict[str, str]]) -> dict[str, int]:
        from mistral_common.protocol.instruct.messages import AssistantMessage, UserMessage
        from mistral_common.protocol.instruct.request import ChatCompletionRequest

        roles = {"user": UserMessage, "assistant": AssistantMessage}
        request = ChatCompletionRequest(
            messages=[roles[m["role"]](content=m["content"]) for m in messages]
        )
        prompt = len(self.tokenizer.encode_chat_completion(request).tokens)
        inner = self.tokenizer.instruct_tokenizer.tokenizer
        return {
            "prompt_tokens": prompt,
            "completion_tokens": len(inner.encode(ANSWER, bos=False, eos=False)),
        }


class _TokenizerHandler(BaseHTTPRequestHandler):
    server: TokenizerModel

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        usage = self.server.usage(body["messages"])
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        chunks = [
            {"choices": [{"index": 0, "delta": {"content": ANSWER}}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {"choices": [], "usage": usage},
        ]
        for chunk in chunks:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(params=["local model", "real tokenizer"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Gateway]:
    model: TokenizerModel | None = None
    args = ["--config-file", str(STACK), "--tokens-per-second", "0"]
    if request.param == "real tokenizer":
        model = TokenizerModel()
        args += ["--openai-base-url", model.base_url]
    running = start_gateway(tmp_path, *args)
    running.model = model  # type: ignore[attr-defined]
    try:
        yield running
    finally:
        running.stop()
        if model is not None:
            model.shutdown()


def utf8(text: str) -> int:
    return len(text.encode("utf-8"))


class Chat:
    """One conversation kept and trimmed the way the web UI keeps and trims it."""

    def __init__(self, *, trim: bool) -> None:
        self.trim = trim
        self.history: list[tuple[str, str]] = []
        self.sent_from = 0
        self.last_done: dict[str, Any] | None = None
        self.remaining: int | None = None

    def messages_for(self, text: str) -> list[tuple[str, str]]:
        # An event holds at most 40 messages and 16,000 characters: whole turns beyond go first.
        while self.sent_from < len(self.history) and (
            len(self.history) - self.sent_from + 1 > MAX_MESSAGES
            or sum(len(t) for _, t in self.history[self.sent_from :]) + len(text) > MAX_CHARS
        ):
            self.sent_from += 2
            self.last_done = None
        whole = self.history[self.sent_from :] + [("user", text)]
        if not self.trim or self.remaining is None:
            return whole
        if self.last_done is not None:
            usage = self.last_done["usage"]
            known = usage["inputTokens"] + usage["outputTokens"]
            if known + REQUEST_COST + utf8(text) + MESSAGE_COST <= self.remaining:
                return whole
        start = len(self.history)  # the new message alone, at least
        for earlier in range(len(self.history) - 2, self.sent_from - 1, -2):  # newest first
            suffix = self.history[earlier:] + [("user", text)]
            if REQUEST_COST + sum(utf8(t) + MESSAGE_COST for _, t in suffix) > self.remaining:
                break
            start = earlier
        self.sent_from = start
        return self.history[start:] + [("user", text)]

    def answered(self, sent: list[tuple[str, str]], events: list[dict[str, Any]]) -> None:
        end = events[-1]
        self.remaining = min(
            end["limits"][w]["allowed"] - end["limits"][w]["used"]
            for w in ("dailyInputTokens", "monthlyInputTokens")
        )
        if end["type"] == "done":
            answer = "".join(e["text"] for e in events if e["type"] == "delta")
            self.history += [sent[-1], ("assistant", answer)]
            self.last_done = end


def payload(messages: list[tuple[str, str]], conversation: str) -> str:
    return json.dumps(
        {
            "conversationId": conversation,
            "turnId": f"t-{uuid.uuid4().hex[:12]}",
            "messages": [{"role": r, "content": [{"text": t}]} for r, t in messages],
        }
    )


async def run_chat(gateway: Gateway, chat: Chat) -> tuple[list[dict[str, Any]], list[tuple]]:
    """Turns until the first refusal: every terminal event, and what each turn sent."""
    tokens = gateway.sign_in("chat")
    ns_in, ns_out = gateway.outputs["inboundNamespace"], gateway.outputs["outboundNamespace"]
    ends: list[dict[str, Any]] = []
    sent_log: list[list[tuple[str, str]]] = []
    async with connect(gateway, tokens["id"]) as client:
        await client.subscribe(f"/{ns_out}/{tokens['sub']}")
        for i in range(400):
            text = f"{SENTENCES[i % 3]} (question {i}) [tokens=60]"
            sent = chat.messages_for(text)
            await client.publish(f"/{ns_in}/{tokens['sub']}", [payload(sent, "c-long")])
            events = await client.turn()
            ends.append(events[-1])
            sent_log.append(sent)
            if events[-1]["type"] == "error":
                return ends, sent_log
            chat.answered(sent, events)
    raise AssertionError("the allowance was never reached")


def test_a_long_chat_trimmed_as_the_ui_trims_uses_its_whole_daily_allowance(gateway):
    ends, _ = asyncio.run(run_chat(gateway, Chat(trim=True)))
    refusal = ends[-1]
    assert refusal["code"] in ("turn_too_large", "limit_exceeded"), refusal
    used = refusal["limits"]["dailyInputTokens"]["used"]
    print(f"trimmed: {len(ends) - 1} turns answered, {used} of {DAILY_INPUT} used at the refusal")
    # THEN the first refusal comes only once at least 95% of the day's input is used
    assert used >= 0.95 * DAILY_INPUT, (used, len(ends))
    # AND it tells the truth: "used up" (with when it resets) only if not even a small turn fits
    if DAILY_INPUT - used >= MINIMAL_TURN_INPUT_TOKENS:
        assert refusal["code"] == "turn_too_large" and "resetsAt" not in refusal
    else:
        assert refusal["code"] == "limit_exceeded" and refusal["resetsAt"]


def test_an_untrimmed_chat_is_refused_only_when_its_turn_really_needs_more_than_is_left(gateway):
    ends, sent_log = asyncio.run(run_chat(gateway, Chat(trim=False)))
    refusal = ends[-1]
    remaining = refusal["remaining"]
    # The model's own count of the refused request (each model counts as it reports).
    model = getattr(gateway, "model", None)
    if model is None:
        needed = local_input_tokens(
            [{"role": r, "content": [{"text": t}]} for r, t in sent_log[-1]]
        )
    else:
        needed = model.usage([{"role": r, "content": t} for r, t in sent_log[-1]])["prompt_tokens"]
    used = refusal["limits"]["dailyInputTokens"]["used"]
    print(
        f"untrimmed: {len(ends) - 1} turns answered, {used} of {DAILY_INPUT} used; the refused "
        f"turn needed {needed} (model's count), {remaining} were left"
    )
    # THEN the refused turn really needed more than was left, within 10%
    assert refusal["code"] == "turn_too_large"
    assert needed >= 0.9 * remaining, (needed, remaining)
    # AND earlier turns went on long past a third of the allowance
    assert refusal["limits"]["dailyInputTokens"]["used"] >= 0.6 * DAILY_INPUT
