"""The wire contract between clients and the gateway: channels, outbound event types, error codes.

Client developers rely on these names (see the README's wire-contract section); change them only
with a new contract version.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

#: Default channel namespace names; a stack may rename them (``ai-gateway:inboundNamespace``...).
DEFAULT_INBOUND_NAMESPACE = "chat"
DEFAULT_OUTBOUND_NAMESPACE = "replies"

#: Limits on one inbound event (defaults for ``ai-gateway:maxMessages`` etc.).
DEFAULT_MAX_MESSAGES = 40
DEFAULT_MAX_MESSAGE_CHARS = 16_000
MAX_TURN_ID_CHARS = 64

#: AppSync Events accepts at most this many events in one HTTP publish.
MAX_EVENTS_PER_PUBLISH = 5


class EventType(StrEnum):
    """The ``type`` of an outbound event."""

    DELTA = "delta"
    DONE = "done"
    ERROR = "error"
    #: The answer to a usage request: the caller's tier, models and limits (no turn ran).
    USAGE = "usage"


class ErrorCode(StrEnum):
    """Stable ``code`` values of outbound ``error`` events."""

    UNAUTHORIZED = "unauthorized"
    INVALID_REQUEST = "invalid_request"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    LIMIT_EXCEEDED = "limit_exceeded"
    TURN_TOO_LARGE = "turn_too_large"
    RATE_LIMITED = "rate_limited"
    DUPLICATE_TURN = "duplicate_turn"
    USAGE_UNAVAILABLE = "usage_unavailable"
    #: An operator blocked the account; the token was issued before the block.
    ACCOUNT_BLOCKED = "account_blocked"
    MODEL_THROTTLED = "model_throttled"
    MODEL_TIMEOUT = "model_timeout"
    MODEL_ERROR = "model_error"
    INTERNAL_ERROR = "internal_error"


#: Which error codes a client may retry as-is (later, or after backing off).
RETRYABLE = frozenset(
    {
        ErrorCode.USAGE_UNAVAILABLE,
        ErrorCode.RATE_LIMITED,
        ErrorCode.MODEL_THROTTLED,
        ErrorCode.MODEL_TIMEOUT,
        ErrorCode.MODEL_ERROR,
        ErrorCode.INTERNAL_ERROR,
    }
)


def channel(namespace: str, user_sub: str) -> str:
    """The private channel of one user in one namespace: ``/<namespace>/<sub>``."""
    return f"/{namespace}/{user_sub}"


def new_turn_id() -> str:
    """A turn id the gateway makes: for a turn sent without one, and for a duplicate's answer."""
    return "g-" + uuid.uuid4().hex[:24]


_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.UNAUTHORIZED: "You can publish only to your own channel.",
    ErrorCode.INVALID_REQUEST: "The request is not valid.",
    ErrorCode.MODEL_NOT_ALLOWED: "That model is not available on your tier.",
    ErrorCode.LIMIT_EXCEEDED: "You have reached a token limit of your tier.",
    ErrorCode.TURN_TOO_LARGE: "This turn is larger than what is left of your allowance.",
    ErrorCode.RATE_LIMITED: "Your tier's request rate is used up; please retry shortly.",
    ErrorCode.DUPLICATE_TURN: "This turn was already received.",
    ErrorCode.USAGE_UNAVAILABLE: "Your usage could not be checked right now; please retry soon.",
    ErrorCode.ACCOUNT_BLOCKED: "This account is blocked; contact the service's operator.",
    ErrorCode.MODEL_THROTTLED: "The model is busy right now; please retry in a moment.",
    ErrorCode.MODEL_TIMEOUT: "The model took too long to answer; please retry.",
    ErrorCode.MODEL_ERROR: "The model could not complete the answer; please retry.",
    ErrorCode.INTERNAL_ERROR: "Something went wrong on our side; please retry.",
}


def default_message(code: ErrorCode) -> str:
    """The message for humans of an error with no more specific one."""
    return _MESSAGES[code]
