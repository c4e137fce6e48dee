"""A long English chat through ``python -m local`` (what ``make dev`` runs) uses its whole daily
input allowance: the history the model already counted is reserved at its count, and the client
trims what it sends to what is left, as the web UI does (docs/web-ui.md)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway.providers import local_input_tokens

from tests.local.gateway_harness import Gateway, connect, start_gateway

pytestmark = pytest.mark.slow

STACK = Path(__file__).with_name("long-chat-stack.yaml")
DAILY_INPUT = 20_000
#: What the web UI reckons a message the gateway has not counted costs, beyond its bytes, and a
#: request beyond its messages (the gateway's own framing allowance).
MESSAGE_COST, REQUEST_COST = 16, 32
SENTENCES = (
    "Could you explain how the reservation of a turn works when the conversation is long",
    "and why the gateway keeps a record of what the model already counted for each chat",
    "then tell me what happens at the edge of the daily allowance, with a short example",
)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    running = start_gateway(tmp_path, "--config-file", str(STACK), "--tokens-per-second", "0")
    try:
        yield running
    finally:
        running.stop()


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
        whole = self.history[self.sent_from :] + [("user", text)]
        if not self.trim or self.remaining is None:
            return whole
        if self.last_done is not None:
            usage = self.last_done["usage"]
            known = usage["inputTokens"] + usage["outputTokens"]
            if known + REQUEST_COST + utf8(text) + MESSAGE_COST <= self.remaining:
                return whole
        start = len(self.history)  # the new message alone, at least
        for earlier in range(len(self.history) - 2, -1, -2):  # whole turns, newest first
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
    used = refusal["limits"]["dailyInputTokens"]["used"]
    print(f"trimmed: {len(ends) - 1} turns answered, {used} of {DAILY_INPUT} used at the refusal")
    # THEN the first refusal comes only once at least 95% of the day's input is used
    assert used >= 0.95 * DAILY_INPUT, (used, len(ends))
    # AND it says the turn does not fit, not that the day is used up
    assert refusal["code"] == "turn_too_large" and "resetsAt" not in refusal


def test_an_untrimmed_chat_is_refused_only_when_its_turn_really_needs_more_than_is_left(gateway):
    ends, sent_log = asyncio.run(run_chat(gateway, Chat(trim=False)))
    refusal = ends[-1]
    remaining = refusal["remaining"]
    # The model's own count of the refused request (the local model counts as it reports).
    messages = [{"role": r, "content": [{"text": t}]} for r, t in sent_log[-1]]
    needed = local_input_tokens(messages)
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
