"""How far the estimate of a stopped turn's output is from real tokenizers (docs/evidence.md).

A stream the gateway closes reports no usage. Where the provider can count the text produced
(the local model; Bedrock's CountTokens for the models that support it) the turn is charged that
count; elsewhere it is estimated at four characters a token (``gateway.token_bound``), never
above the reservation. This prints the estimate against Mistral's real tokenizers (Tekken,
SentencePiece v3 and v1) on the project's own English prose, by length of the text produced.

    .venv/bin/python -m devtools.stop_estimate
"""

from __future__ import annotations

import statistics

from gateway.token_bound import estimate_tokens

from devtools.refusal_margin import english_corpus, samples

SIZES = (50, 200, 800, 3_000)


def raw_tokenizers() -> dict[str, object]:
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    def counter(tokenizer: MistralTokenizer):  # type: ignore[no-untyped-def]
        inner = tokenizer.instruct_tokenizer.tokenizer
        return lambda text: len(inner.encode(text, bos=False, eos=False))

    return {
        "tekken": counter(MistralTokenizer.v3(is_tekken=True)),
        "sentencepiece-v3": counter(MistralTokenizer.v3()),
        "sentencepiece-v1": counter(MistralTokenizer.v1()),
    }


def main() -> None:
    corpus = english_corpus()
    counters = raw_tokenizers()
    print("| text produced | real tokens (median) | estimate | error (estimate / real - 1) |")
    print("|---|---|---:|---|")
    for size in SIZES:
        texts = samples(corpus, size)
        real = {name: [count(t) for t in texts] for name, count in counters.items()}  # type: ignore[operator]
        estimate = [estimate_tokens(len(t)) for t in texts]
        errors = [
            statistics.median(e / r - 1 for e, r in zip(estimate, counts, strict=True))
            for counts in real.values()
        ]
        medians = [statistics.median(c) for c in real.values()]
        print(
            f"| {size:,} characters | {min(medians):.0f}–{max(medians):.0f} | "
            f"{statistics.median(estimate):.0f} | {min(errors):+.0%} to {max(errors):+.0%} |"
        )


if __name__ == "__main__":
    main()
