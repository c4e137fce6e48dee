"""The input-token bound holds against real tokenizers of models Bedrock serves: Mistral's
SentencePiece (v1, v3) and Tekken (byte-level BPE) tokenizers, as shipped in ``mistral-common``,
counting whole chat requests (template tokens included), over text in every script."""

from __future__ import annotations

import unicodedata

import pytest
from gateway.token_bound import input_token_bound, text_token_bound
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mistral_common.protocol.instruct.messages import AssistantMessage, UserMessage
from mistral_common.protocol.instruct.request import ChatCompletionRequest
from mistral_common.tokens.tokenizers import mistral

TOKENIZERS = {
    "sentencepiece-v1": mistral.MistralTokenizer.v1(),
    "sentencepiece-v3": mistral.MistralTokenizer.v3(),
    "tekken": mistral.MistralTokenizer.v3(is_tekken=True),
}

SCRIPTS = {
    "english": "The gateway reserves an upper bound of the tokens a turn may use. ",
    "chinese": "网关为每一轮对话预留令牌的上限，结算时释放差额。",
    "japanese": "ゲートウェイは各ターンのトークン上限を予約し、精算時に差分を解放します。",
    "emoji": "😀🎉👩‍👩‍👧‍👦🏳️‍🌈🇯🇵",
    "mixed": "Limits 限界 リミット 😀 — naïve café Ωμέγα ﷺ ﬃ",
}


def request_tokens(tokenizer, texts: list[str]) -> int:
    roles = [UserMessage, AssistantMessage]
    messages = [roles[i % 2](content=text) for i, text in enumerate(texts)]
    return len(tokenizer.encode_chat_completion(ChatCompletionRequest(messages=messages)).tokens)


# Text models accept: any code point but surrogates (invalid in a request) and C0 controls
# other than whitespace (the templates reject some).
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=200,
).filter(lambda t: t.strip())


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_the_bound_covers_each_script_as_a_real_tokenizer_counts_it(name, script):
    texts = [SCRIPTS[script] * 20]
    assert request_tokens(TOKENIZERS[name], texts) <= input_token_bound(texts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(text, min_size=1, max_size=5).map(lambda ts: ts[: (len(ts) - 1) | 1]))
def test_the_bound_covers_any_conversation_in_any_script(texts):
    bound = input_token_bound(texts)
    for tokenizer in TOKENIZERS.values():
        assert request_tokens(tokenizer, texts) <= bound


def test_a_character_that_normalisation_lengthens_is_bounded_by_its_longest_form():
    # U+FDFA is 3 bytes in UTF-8 and 33 after NFKC, which SentencePiece applies by default
    ligature = "\ufdfa"
    assert len(unicodedata.normalize("NFKC", ligature).encode()) == 33
    assert text_token_bound(ligature) >= 33
    assert text_token_bound("ß") >= len("ss")  # case folding may lengthen too


def test_ascii_text_is_bounded_by_its_length_and_stays_cheap_to_bound():
    assert text_token_bound("Hello, world") == 12


def test_for_english_the_bound_is_a_small_multiple_of_the_real_count():
    # The margin that can refuse an English turn which would have fit (docs/evidence.md)
    texts = [SCRIPTS["english"] * 30]
    real = max(request_tokens(t, texts) for t in TOKENIZERS.values())
    assert real < input_token_bound(texts) <= 6 * real
