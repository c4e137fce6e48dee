"""The Chat Completions parameters the gateway takes, and those it refuses unless they hold a
value that asks for nothing it does not do (``completion_create_params.py`` of the ``openai``
package names them all)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUPPORTED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "stream_options",
        "user",
        "safety_identifier",
    }
)


def is_null(value: Any) -> bool:
    return value is None


def _null_or(*allowed: Any) -> Any:
    def check(value: Any) -> bool:
        return value is None or any(
            type(value) is type(a) and value == a
            for a in allowed  # True is not 1
        )

    return check


def no_tools(value: Any) -> bool:
    return value is None or (isinstance(value, list) and not value)


def _text_format(value: Any) -> bool:
    return value is None or (isinstance(value, Mapping) and dict(value) == {"type": "text"})


def _zero(value: Any) -> bool:
    return value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and value == 0
    )


def _empty_mapping(value: Any) -> bool:
    return value is None or (isinstance(value, Mapping) and not value)


def _any_bool(value: Any) -> bool:
    return value is None or isinstance(value, bool)


#: OpenAI parameters the gateway does not implement, each with the values that ask for nothing
#: more than it does (``completion_create_params.py`` of the ``openai`` package names them all).
INERT: dict[str, tuple[Any, str]] = {
    "n": (_null_or(1), "only one choice per request is supported (n must be 1)"),
    "tools": (no_tools, "tools are not supported"),
    "tool_choice": (_null_or("none"), "tools are not supported"),
    "parallel_tool_calls": (_any_bool, ""),
    "functions": (no_tools, "functions are not supported"),
    "function_call": (_null_or("none"), "functions are not supported"),
    "logprobs": (_null_or(False), "logprobs are not supported"),
    "top_logprobs": (is_null, "logprobs are not supported"),
    "response_format": (_text_format, 'only response_format {"type": "text"} is supported'),
    "frequency_penalty": (_zero, "frequency_penalty is not supported (it must be 0)"),
    "presence_penalty": (_zero, "presence_penalty is not supported (it must be 0)"),
    "logit_bias": (_empty_mapping, "logit_bias is not supported"),
    "seed": (is_null, "seed is not supported"),
    "modalities": (lambda v: v is None or v == ["text"], 'only modalities ["text"] is supported'),
    "audio": (is_null, "audio output is not supported"),
    "prediction": (is_null, "predicted outputs are not supported"),
    "web_search_options": (is_null, "web search is not supported"),
    "reasoning_effort": (is_null, "reasoning_effort is not supported"),
    "verbosity": (is_null, "verbosity is not supported"),
    "service_tier": (_null_or("auto", "default"), "only service_tier auto is supported"),
    "store": (_null_or(False), "stored completions are not supported"),
    "metadata": (
        _empty_mapping,
        "metadata is only for stored completions (not supported)",
    ),
    "moderation": (is_null, "moderation is not supported"),
    "prompt_cache_key": (is_null, "prompt_cache_key is not supported"),
    "prompt_cache_retention": (is_null, "prompt_cache_retention is not supported"),
    "prompt_cache_options": (is_null, "prompt_cache_options is not supported"),
}
