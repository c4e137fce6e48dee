"""How much headroom the input-token bound costs an English turn (the figures in docs/evidence.md).

A turn reserves an upper bound of its input tokens (``gateway.token_bound``) and settles what the
model counts. A turn can therefore be refused although it would have fit only when the user's
input allowance left lies between the real count and the bound: this prints that margin, for
English text counted by real tokenizers of models Bedrock serves (Mistral's Tekken and
SentencePiece, shipped in ``mistral-common``), for single messages and whole conversations.

    .venv/bin/python -m devtools.refusal_margin
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from gateway.token_bound import input_token_bound

REPO = Path(__file__).resolve().parent.parent

#: The free tier's daily input allowance in the stack examples, for scale.
DAILY_INPUT = 20_000
SIZES = (40, 150, 400, 1_000, 4_000, 16_000)


def english_corpus() -> str:
    """The project's own English prose (README and docs, code blocks and tables left out)."""
    text = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        body = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        text += [line for line in body.splitlines() if line and line[0].isalpha()]
    return " ".join(text)


def tokenizers():
    from mistral_common.protocol.instruct.messages import AssistantMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    def counter(tokenizer):
        def count(texts: list[str]) -> int:
            roles = [UserMessage, AssistantMessage]
            messages = [roles[i % 2](content=t) for i, t in enumerate(texts)]
            request = ChatCompletionRequest(messages=messages)
            return len(tokenizer.encode_chat_completion(request).tokens)

        return count

    return {
        "tekken": counter(MistralTokenizer.v3(is_tekken=True)),
        "sentencepiece-v3": counter(MistralTokenizer.v3()),
        "sentencepiece-v1": counter(MistralTokenizer.v1()),
    }


def samples(corpus: str, size: int, count: int = 25) -> list[str]:
    step = max(1, (len(corpus) - size) // count)
    return [corpus[i : i + size] for i in range(0, len(corpus) - size, step)][:count]


def main() -> None:
    corpus = english_corpus()
    counters = tokenizers()
    print(f"English corpus: {len(corpus)} characters of the project's docs\n")
    print("| message | tokenizer | real tokens | bound | bound ÷ real | margin | % of 20k/day |")
    print("|---|---|---|---|---|---|---|")
    for size in SIZES:
        texts = samples(corpus, size)
        for name, count in counters.items():
            real = statistics.median(count([t]) for t in texts)
            bound = statistics.median(input_token_bound([t]) for t in texts)
            margin = bound - real
            print(
                f"| {size} chars | {name} | {real:.0f} | {bound:.0f} | {bound / real:.1f}x "
                f"| {margin:.0f} | {100 * margin / DAILY_INPUT:.1f}% |"
            )
    # A conversation resends its history: ten messages of ~400 characters.
    history = [t for t in samples(corpus, 400, 10)][:9]
    for name, count in counters.items():
        real, bound = count(history), input_token_bound(history)
        print(
            f"| 9-message conversation, 3,600 chars | {name} | {real} | {bound} "
            f"| {bound / real:.1f}x | {bound - real} | {100 * (bound - real) / DAILY_INPUT:.1f}% |"
        )


if __name__ == "__main__":
    main()
