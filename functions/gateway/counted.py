"""Counted conversations: what the model already counted is not bounded again.

A turn's reservation must be an upper bound of the input tokens the model will count. For text
the gateway has never seen, that is one token per UTF-8 byte (:mod:`gateway.token_bound`), about
four times the real count of English. But a chat is append-only: the next turn sends the
previous turn's messages, its answer, and one new message. The previous turn's ``done`` carried
the model's own input and output counts, so the gateway records them on the user's usage item,
in the settlement write it makes anyway, keyed by a hash of the exact messages they cover
(model, system prompt, every message and the answer). The next turn looks its history up by the
same hash: found, it reserves that count plus the bound of the new message and some framing;
not found (an edited, trimmed or foreign history), it bounds everything as before. No request is
added to a turn.

Why the reservation still holds: the count of a conversation is the count of its previous
request (template included) plus the answer the model produced; sending the answer back as a
message adds at most the framing of one message, and the new message adds at most its bound and
its own framing (:data:`CONTINUATION_FRAMING_TOKENS` allows several times what Mistral's
templates add). Settlement never stores more than was reserved in any case
(:func:`gateway.metering.charged_usage`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from gateway.token_bound import (
    MESSAGE_FRAMING_TOKENS,
    REQUEST_FRAMING_TOKENS,
    text_token_bound,
)
from gateway.turn_io import TurnRequest

#: How long a conversation's count is kept (a chat resumed the next day bounds its history anew).
COUNT_SECONDS = 86_400
#: Tokens a continued conversation may add beyond its count and its new message's text: the
#: answer's end-of-message and the new message's role markers, and the request's begin and end.
CONTINUATION_FRAMING_TOKENS = REQUEST_FRAMING_TOKENS + MESSAGE_FRAMING_TOKENS


def conversation_key(
    model_id: str, system: Sequence[str], messages: Sequence[tuple[str, str]]
) -> str:
    """The key of a conversation: a hash of the model and of every text exactly as sent."""
    document = json.dumps([model_id, list(system), [list(m) for m in messages]], ensure_ascii=True)
    return hashlib.sha256(document.encode("ascii")).hexdigest()[:24]


def continuation_bound(known: int, new_text: str) -> int:
    """The most input tokens a turn can count when its history was counted as ``known``."""
    return known + CONTINUATION_FRAMING_TOKENS + text_token_bound(new_text)


def history_key(model_id: str, request: TurnRequest) -> str | None:
    """The key of the conversation a turn continues: every message before its new one."""
    if len(request.messages) < 2:
        return None
    sent = [(m.role, m.text) for m in request.messages[:-1]]
    return conversation_key(model_id, request.system, sent)


def answered_key(model_id: str, request: TurnRequest, answer: str) -> str:
    """The key of the conversation a turn leaves: its messages and the answer it got."""
    sent = [(m.role, m.text) for m in request.messages] + [("assistant", answer)]
    return conversation_key(model_id, request.system, sent)
