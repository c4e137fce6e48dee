"""No stored usage passes a limit in any script: turns of English, Chinese, Japanese, emoji and
mixed text, with models that count their input as a real tokenizer does, as the worst a
byte-level tokenizer can, and beyond anything possible — one after another and fifty at once at
the edge of a limit — through the real chat handler and DynamoDB adapter against moto in server
mode. And one publish delivered twice at once runs, and is charged, once."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import chat
import pytest
from gateway.providers import Completion, ModelRequest, TextDelta
from gateway.runtime import Runtime
from gateway.tiers import TierConfig
from gateway.token_bound import input_token_bound
from gateway.usage import TokenUsage, UsageSnapshot

from tests.robustness.cases import ran, saw
from tests.robustness.conftest import LITE, MICRO, OUTBOUND
from tests.support.appsync import lambda_context

TURNS = 50
LIMITS = {
    "dailyInputTokens": 20_000,
    "dailyOutputTokens": 40_000,
    "monthlyInputTokens": 200_000,
    "monthlyOutputTokens": 400_000,
}
TIERS = TierConfig.from_document(
    {
        "defaultTier": "free",
        "tiers": {
            "free": {
                "models": [MICRO, LITE],
                **LIMITS,
                "maxOutputTokensPerTurn": 256,
                "cache": False,
                "requestsPerMinute": 100_000,
                "maxConcurrentTurns": 1_000,
            }
        },
    }
)

SCRIPTS = {
    "english": "How do token limits work on this gateway, and when do they reset? ",
    "chinese": "这个网关的令牌限额是如何计算的？什么时候重置？",
    "japanese": "このゲートウェイのトークン上限はどう計算され、いつリセットされますか？",
    "emoji": "😀🎉🚀🌏👩‍💻🧪",
    "mixed": "Limits 限界 リミット 😀 naïve café Ωμέγα — ok? ",
}


def _tekken() -> Callable[[list[str]], int]:
    from mistral_common.protocol.instruct.messages import AssistantMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    tokenizer = MistralTokenizer.v3(is_tekken=True)

    def count(texts: list[str]) -> int:
        roles = [UserMessage, AssistantMessage]
        messages = [roles[i % 2](content=t) for i, t in enumerate(texts)]
        request = ChatCompletionRequest(messages=messages)
        return len(tokenizer.encode_chat_completion(request).tokens)

    return count


#: How each stub model counts a request's input: as a real tokenizer (Mistral's Tekken), as the
#: worst a byte-level tokenizer can (a token per UTF-8 byte, plus template tokens), and at three
#: times the gateway's bound — more than any tokenizer can, so the settlement cap must hold.
TOKENIZATIONS: dict[str, Callable[[], Callable[[list[str]], int]]] = {
    "realistic": _tekken,
    "bytes": lambda: lambda texts: sum(len(t.encode()) + 8 for t in texts) + 8,
    "impossible": lambda: lambda texts: 3 * input_token_bound(texts),
}


class StubModel:
    """Reports the input its tokenization counts and the most output it was allowed."""

    name = "local"

    def __init__(self, count_input: Callable[[list[str]], int]) -> None:
        self.count_input = count_input
        self.calls = 0
        self._lock = threading.Lock()

    def stream(self, request: ModelRequest) -> Iterator[Any]:
        with self._lock:
            self.calls += 1
        texts = ["".join(b["text"] for b in m["content"]) for m in request.messages]
        yield TextDelta("ok")
        yield Completion("max_tokens", TokenUsage(self.count_input(texts), request.max_tokens))


#: The same tier with a daily money window of half a cent at Claude Haiku 4.5's list price: the
#: dollars run out long before the tokens.
DAILY_USD = 0.005
PRICE = {"inputPer1k": 0.0011, "outputPer1k": 0.0055}
MONEY_TIERS = TierConfig.from_document(
    {
        **TIERS.to_document(),
        "tiers": {"free": {**TIERS.to_document()["tiers"]["free"], "dailyUsd": DAILY_USD}},
        "prices": {MICRO: PRICE, LITE: PRICE},
    }
)


class StaticTiers:
    def __init__(self, config: TierConfig = TIERS) -> None:
        self.config = config

    def current(self) -> TierConfig:
        return self.config


def _handler(stage, model: StubModel, config: TierConfig = TIERS):
    return chat.make_handler(Runtime(stage.env, provider=model, tiers=StaticTiers(config)))


def _prompt(script: str, chars: int) -> str:
    text = SCRIPTS[script]
    return (text * (chars // len(text) + 1))[:chars]


def _assert_within_limits(snapshot: UsageSnapshot) -> None:
    used = snapshot.settled(int(time.time()))
    over = {w: used[w] - LIMITS[w] for w in LIMITS if used[w] > LIMITS[w]}
    assert over == {}, f"stored usage over a limit by {over}"


@pytest.mark.parametrize("tokenization", sorted(TOKENIZATIONS))
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_turns_one_after_another_never_store_usage_past_a_limit(stage, script, tokenization):
    # GIVEN a user, and prompts of 3,000 characters in one script
    model = StubModel(TOKENIZATIONS[tokenization]())
    handler = _handler(stage, model)
    sub = str(uuid.uuid4())
    identity = stage.user(sub, ["free"])
    prompt = _prompt(script, 3_000)
    refused = None
    # WHEN they send turns until one is refused (at most 60)
    for i in range(60):
        mark = stage.mark()
        handler(
            stage.publish_event(identity, [stage.turn(f"{i}: {prompt}")]),
            lambda_context(str(uuid.uuid4())),
        )
        ran("multilingual: sequential turns")
        events = [p.payload for p in stage.published_since(mark)]
        terminal = [e for e in events if e["type"] in ("done", "error")]
        assert terminal == [events[-1]]
        # THEN after every turn the stored usage is within every limit
        _assert_within_limits(stage.usage(sub))
        if terminal[0]["type"] == "error":
            refused = terminal[0]
            break
    # (a turn that does not fit what is left is too large; a window with no room is used up)
    assert refused is not None and refused["code"] in ("turn_too_large", "limit_exceeded")
    assert stage.usage(sub).reservations == {}
    saw(f"sequential {script}/{tokenization}: turns admitted", model.calls)


def _all_at_once(stage, handler, identity, prompt: str):
    """Publish TURNS turns of ``prompt`` for ``identity`` and run them all at once, released
    together by a barrier; the stage's mark from before they ran."""
    start = threading.Barrier(TURNS)
    mark = stage.mark()

    def one(i: int) -> None:
        event = stage.publish_event(identity, [stage.turn(f"{i:02}: {prompt}")])
        start.wait()
        handler(event, lambda_context(str(uuid.uuid4())))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(TURNS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return mark


@pytest.mark.parametrize(
    ("script", "tokenization"),
    [(s, "bytes") for s in sorted(SCRIPTS)] + [("mixed", "realistic"), ("emoji", "impossible")],
)
def test_fifty_turns_at_once_at_the_edge_never_store_usage_past_a_limit(
    stage, script, tokenization
):
    # GIVEN a user with room for about three turns' worst case of daily input
    model = StubModel(TOKENIZATIONS[tokenization]())
    handler = _handler(stage, model)
    sub, now = str(uuid.uuid4()), time.time()
    prompt = _prompt(script, 600)
    worst = input_token_bound([f"00: {prompt}"])
    used = LIMITS["dailyInputTokens"] - 3 * worst - worst // 2
    stage.seed(sub, now, daily=(used, 100), monthly=(used, 100))
    identity = stage.user(sub, ["free"])
    # WHEN fifty of their turns arrive at once
    mark = _all_at_once(stage, handler, identity, prompt)
    ran("multilingual: concurrent turns", TURNS)

    # THEN every turn ended once; some were admitted, the rest refused
    by_turn: dict[str, list[dict]] = defaultdict(list)
    for published in stage.published_since(mark):
        assert published.channel == f"/{OUTBOUND}/{sub}"
        by_turn[published.payload["turnId"]].append(published.payload)
    assert len(by_turn) == TURNS
    ends = [events[-1] for events in by_turn.values()]
    assert all(
        [e for e in events if e["type"] in ("done", "error")] == [events[-1]]
        for events in by_turn.values()
    )
    done = [e for e in ends if e["type"] == "done"]
    assert done and model.calls == len(done)
    if tokenization != "realistic":  # each settles its whole reservation: room for three
        assert len(done) <= 3
    # (a turn that kept losing the race for the usage item is refused, retryably, as the
    # store's conditional writes were never won: nothing is stored for it either)
    refusals = {"limit_exceeded", "turn_too_large", "usage_unavailable"}
    assert {e["code"] for e in ends if e["type"] == "error"} <= refusals
    # AND not one token is stored past any limit, and no reservation is left
    snapshot = stage.usage(sub)
    _assert_within_limits(snapshot)
    assert snapshot.reservations == {}
    saw(f"concurrent {script}/{tokenization}: admitted", len(done))


def test_one_publish_delivered_twice_at_once_runs_and_is_charged_once(stage):
    # GIVEN one publish (the same turnId) arriving in two invocations at the same moment
    model = StubModel(TOKENIZATIONS["bytes"]())
    handler = _handler(stage, model)
    sub = str(uuid.uuid4())
    identity = stage.user(sub, ["free"])
    payload = stage.turn("Tell me about limits")
    start = threading.Barrier(2)
    mark = stage.mark()

    def deliver() -> None:
        event = stage.publish_event(identity, [payload])
        start.wait()
        handler(event, lambda_context(str(uuid.uuid4())))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ran("multilingual: duplicate deliveries", 2)

    # THEN the model ran once and one turn's usage is stored
    assert model.calls == 1
    by_turn: dict[str, list[dict]] = defaultdict(list)
    for published in stage.published_since(mark):
        by_turn[published.payload["turnId"]].append(published.payload)
    original = by_turn.pop(payload["turnId"])
    assert [e["seq"] for e in original] == list(range(len(original)))
    assert [e["type"] for e in original if e["type"] in ("done", "error")] == ["done"]
    usage = original[-1]["usage"]
    settled = stage.usage(sub).settled(int(time.time()))
    assert settled["dailyInputTokens"] == usage["inputTokens"]
    # AND the other delivery was told it is a duplicate, under a turn id of its own
    ((notice_id, notices),) = by_turn.items()
    assert [(e["seq"], e["code"], e["duplicateOf"]) for e in notices] == [
        (0, "duplicate_turn", payload["turnId"])
    ]
    assert notice_id != payload["turnId"]


def _spent_today(snapshot: UsageSnapshot) -> int:
    return snapshot.settled(int(time.time()))["dailyUsd"]


@pytest.mark.parametrize("script", ["english", "chinese"])
def test_a_dollar_window_is_never_passed_one_turn_after_another(stage, script):
    model = StubModel(TOKENIZATIONS["bytes"]())
    handler = _handler(stage, model, MONEY_TIERS)
    sub = str(uuid.uuid4())
    identity = stage.user(sub, ["free"])
    prompt = _prompt(script, 600)
    refused = None
    for i in range(60):
        mark = stage.mark()
        handler(
            stage.publish_event(identity, [stage.turn(f"{i}: {prompt}")]),
            lambda_context(str(uuid.uuid4())),
        )
        events = [p.payload for p in stage.published_since(mark)]
        assert _spent_today(stage.usage(sub)) <= DAILY_USD * 1e9
        if events[-1]["type"] == "error":
            refused = events[-1]
            break
    assert refused is not None and refused["window"] == "dailyUsd", refused
    assert stage.usage(sub).reservations == {}
    saw(f"sequential dollars {script}: turns admitted", model.calls)


def test_fifty_turns_at_once_never_spend_past_a_dollar_window(stage):
    model = StubModel(TOKENIZATIONS["impossible"]())
    handler = _handler(stage, model, MONEY_TIERS)
    sub = str(uuid.uuid4())
    identity = stage.user(sub, ["free"])
    prompt = _prompt("mixed", 600)
    mark = _all_at_once(stage, handler, identity, prompt)
    ran("multilingual: concurrent turns on a dollar window", TURNS)
    ends: dict[str, dict] = {}
    for published in stage.published_since(mark):
        ends[published.payload["turnId"]] = published.payload
    assert len(ends) == TURNS
    done = [e for e in ends.values() if e["type"] == "done"]
    refused = [e for e in ends.values() if e["type"] == "error"]
    assert done and refused and {e["window"] for e in refused} == {"dailyUsd"}
    snapshot = stage.usage(sub)
    # THEN not one nano-dollar is stored past the window, and no reservation is left
    assert _spent_today(snapshot) <= DAILY_USD * 1e9
    assert snapshot.reservations == {}
    saw("concurrent dollars: admitted", len(done))
