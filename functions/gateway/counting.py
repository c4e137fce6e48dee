"""Exact token counts, where a provider can give them: Bedrock's CountTokens, the local model.

Bedrock's CountTokens "returns the token count that would be used if the same input were sent to
the model in an inference request" and costs nothing
(https://docs.aws.amazon.com/bedrock/latest/userguide/count-tokens.html), but only some models
support it — Anthropic's Claude 3.5 and later, by langchain-aws's allowlist
(``libs/aws/langchain_aws/utils.py``, ``count_tokens_api_supported_for_model``); Amazon Nova
models are refused with a ValidationException — and it takes the foundation-model id, not an
inference profile's. The stack's model catalog says which models may be counted
(``countTokens``), and the gateway calls it only where it pays: when a turn's input bound does not
fit what is left (one request, instead of a refusal), and to count what a stopped turn produced.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gateway.model import ModelRequest
from gateway.model_ids import foundation_model_of
from gateway.ports import TierSource, TurnLog
from gateway.providers import local_input_tokens


class BedrockTokenCounter:
    """CountTokens for the models the tier document marks countable; None for any other, and
    on any failure (the caller then keeps its bound or estimate)."""

    def __init__(self, client: Callable[[], Any], tiers: TierSource, log: TurnLog) -> None:
        self._client = client
        self._tiers = tiers
        self._log = log

    def input_tokens(self, request: ModelRequest) -> int | None:
        converse: dict[str, Any] = {"messages": list(request.messages)}
        if request.system:
            converse["system"] = [{"text": text} for text in request.system]
        return self._count(request.model_id, converse)

    def output_tokens(self, model_id: str, text: str) -> int | None:
        # The text as one message: its count includes that message's few template tokens, so
        # it is at most a handful above what the model produced (never below).
        converse = {"messages": [{"role": "user", "content": [{"text": text or " "}]}]}
        return self._count(model_id, converse)

    def _count(self, model_id: str, converse: dict[str, Any]) -> int | None:
        try:
            if model_id not in self._tiers.current().countable:
                return None
            response = self._client().count_tokens(
                modelId=foundation_model_of(model_id), input={"converse": converse}
            )
            return int(response["inputTokens"])
        except Exception as err:  # a count is an optimisation: the turn goes on without it
            self._log.warning("tokens not counted", extra={"reason": type(err).__name__})
            return None


#: The local model's pieces: a word with its leading space, or the ":" it puts after the prompt's
#: words (gateway.providers.local_reply); each is one token.
_LOCAL_PIECE = re.compile(r"\s?[^\s:]+|:")


class LocalTokenCounter:
    """The local model's own counts. Its input is counted only for the models Bedrock could
    count (the tier document's ``countable``): it stands in for the tiers' Bedrock models, and a
    local gateway that admitted what AWS would refuse would mislead the developers building on
    it. Its output is one token per piece it produced (a prompt word holding ':' it echoes
    counts one more: never fewer than it produced)."""

    def __init__(self, tiers: TierSource) -> None:
        self._tiers = tiers

    def input_tokens(self, request: ModelRequest) -> int | None:
        if request.model_id not in self._tiers.current().countable:
            return None
        return local_input_tokens(request.messages)

    def output_tokens(self, model_id: str, text: str) -> int | None:
        return len(_LOCAL_PIECE.findall(text))
