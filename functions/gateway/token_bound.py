"""An upper bound of the input tokens any Bedrock model can count for a request, from its text.

A turn reserves this bound, so stored usage cannot pass a limit whatever the script or language
of the prompt. Why it holds:

* Every tokenizer a current text model uses either works on UTF-8 bytes (byte-level BPE, as in
  GPT-2, tiktoken and Tekken — https://github.com/openai/tiktoken, README: "It's reversible and
  lossless ... works on arbitrary text") or is SentencePiece with byte fallback, which writes a
  character it has no piece for as its UTF-8 bytes, one token each
  (https://github.com/google/sentencepiece, doc/options.md: ``--byte_fallback``). Every token
  then stands for at least one byte of the text it encodes, so a text of *n* UTF-8 bytes is at
  most *n* tokens. A tokenizer without byte fallback maps an unknown character to one ``<unk>``
  token: fewer, never more.
* Tokenizers may normalise the text first. SentencePiece applies a variant of NFKC by default
  (doc/normalization.md: ``nmt_nfkc``, optionally with case folding), and NFKC can lengthen a
  text (U+FDFA, 3 bytes, becomes 33). The bound is therefore taken over the text as written and
  its NFC, NFD, NFKC and NFKD forms, each also case-folded: whichever is longest in UTF-8.
* A chat template wraps each message in role markers and the request in begin/end markers
  (measured with Mistral's tokenizers: at most 8 tokens for a one-message request and 16 for
  three, SentencePiece v1; 3 and 6 with Tekken). :data:`MESSAGE_FRAMING_TOKENS` and
  :data:`REQUEST_FRAMING_TOKENS` allow several times that.

Bedrock documents that "token counting is model-specific because different models use different
tokenization strategies" (CountTokens,
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CountTokens.html) and does
not publish the tokenizers of every model it serves, so the bound rests on the reasoning above;
``tests/functions/test_token_bound.py`` checks it against the real Mistral tokenizers (SentencePiece
v1/v3 and Tekken) on every script. Settlement never charges more than was reserved either way
(:func:`gateway.metering.charged_usage`), and counts any excess as an overrun.

For English the bound is about four times the real count (one token per byte against about four
bytes per token); the difference is released when the turn settles, so it matters only to a turn
that arrives within that margin of an input limit (docs/evidence.md measures it).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from typing import Literal

#: Tokens a chat template may add around one message (role markers, separators).
MESSAGE_FRAMING_TOKENS = 16
#: Tokens a chat template may add around the whole request (begin marker, assistant prompt).
REQUEST_FRAMING_TOKENS = 32

_FORMS: tuple[Literal["NFC", "NFD", "NFKC", "NFKD"], ...] = ("NFC", "NFD", "NFKC", "NFKD")

#: Characters per token of a realistic estimate (English prose runs at about four), used only
#: where no count exists: output a model produced before it failed or was stopped.
CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int, *, at_most: int | None = None) -> int:
    """A realistic token estimate for ``chars`` characters of produced text, capped at
    ``at_most`` (what the turn reserved)."""
    estimate = math.ceil(chars / CHARS_PER_TOKEN)
    return estimate if at_most is None else min(at_most, estimate)


def utf8_length(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (a lone surrogate, which no valid request holds, as 3)."""
    return len(text.encode("utf-8", "surrogatepass"))


def text_token_bound(text: str) -> int:
    """The most tokens any byte-level or byte-fallback tokenizer can make of ``text``."""
    if text.isascii():
        # ASCII is its own NFC/NFD/NFKC/NFKD form, and case folding keeps its length.
        return len(text)
    longest = max(utf8_length(text), utf8_length(text.casefold()))
    for form in _FORMS:
        normalised = unicodedata.normalize(form, text)
        longest = max(longest, utf8_length(normalised), utf8_length(normalised.casefold()))
    return longest


def input_token_bound(texts: Iterable[str]) -> int:
    """The most input tokens a model can count for a request whose messages hold ``texts``."""
    total = REQUEST_FRAMING_TOKENS
    for text in texts:
        total += MESSAGE_FRAMING_TOKENS + text_token_bound(text)
    return total
