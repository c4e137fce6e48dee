"""Chat Completions requests: one body in, one validated, Converse-shaped request out.

:func:`parse_chat_completion` accepts the request body exactly as it arrived (bytes) and either
returns a frozen :class:`ChatCompletionRequest` or raises :class:`OpenAiRequestError`, whose
``param`` names the offending parameter the way OpenAI's own errors do (``messages[2].content``,
``n``, ``tools``). Nothing else escapes, whatever arrives: bytes that are not UTF-8, JSON nested
past the interpreter's recursion limit, lone UTF-16 surrogates, numbers of the wrong type.

What is accepted follows the request schema of the official ``openai`` Python package
(``openai/types/chat/completion_create_params.py``, ``chat_completion_*_message_param.py``,
``chat_completion_content_part_text_param.py``; https://github.com/openai/openai-python) and maps
onto Bedrock's Converse API (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html):

* ``system`` (and ``developer``, OpenAI's newer name for it) messages become Converse's separate
  ``system`` blocks, in order;
* ``user`` and ``assistant`` messages become Converse messages. Converse requires the
  conversation to start with a user message and to alternate roles, so consecutive messages of
  one role are joined with a newline, as LangChain's ``merge_message_runs`` does for models that
  refuse runs (https://python.langchain.com/docs/how_to/merge_message_runs/);
* ``max_tokens`` / ``max_completion_tokens``, ``temperature``, ``top_p`` and ``stop`` become
  ``inferenceConfig``. Converse takes temperature and topP between 0 and 1 and maxTokens of at
  least 1 (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InferenceConfiguration.html),
  so the wider OpenAI range (temperature up to 2) is refused here rather than by the model; OpenAI
  allows up to 4 stop sequences (``completion_create_params.py``: "Up to 4 sequences").

Every other OpenAI parameter is refused unless it holds a value that asks for nothing the gateway
does not do (``n: 1``, ``logprobs: false``, ``response_format: {"type": "text"}``, an empty
``tools`` list, ``null`` for anything): the gateway never silently drops what a client asked for.
A key OpenAI does not define is refused too.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from gateway.openai.parameters import INERT, SUPPORTED, is_null, no_tools
from gateway.openai.request import (
    MAX_MODEL_CHARS,
    MAX_STOP_SEQUENCE_CHARS,
    MAX_STOP_SEQUENCES,
    MAX_USER_CHARS,
    ChatCompletionRequest,
    ConverseMessage,
    InferenceConfig,
    OpenAiRequestError,
    WireLimits,
    body_limit,
)

#: Code points that cannot be encoded as UTF-8: a JSON ``\ud800`` escape decodes to one.
_SURROGATES = re.compile(r"[\ud800-\udfff]")
#: A key the client sent, echoed back in an error only when it is a plain name.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")

__all__ = [
    "ChatCompletionRequest",
    "ConverseMessage",
    "InferenceConfig",
    "OpenAiRequestError",
    "WireLimits",
    "body_limit",
    "parse_chat_completion",
]


class _StreamOptions(BaseModel):
    """``stream_options`` (``chat_completion_stream_options_param.py``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    include_usage: StrictBool | None = None
    #: Obfuscation pads streamed chunks against size side channels; the gateway's chunks are
    #: not padded, so asking for it or not changes nothing here.
    include_obfuscation: StrictBool | None = None


class _TextPart(BaseModel):
    """A text content part (``chat_completion_content_part_text_param.py``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["text"]
    text: StrictStr = Field(max_length=1_000_000)


_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_UNSUPPORTED_ROLES = {
    "tool": "tool messages are not supported (tools are not supported)",
    "function": "function messages are not supported (functions are not supported)",
}
#: Keys a message may carry besides role and content. ``name`` (a participant name) has no
#: Converse counterpart and changes nothing the model is told, so it is accepted and dropped;
#: the assistant's tool, audio and refusal fields are accepted only empty.
_MESSAGE_EXTRAS: dict[str, Any] = {
    "name": lambda v: v is None or isinstance(v, str),
    "tool_calls": no_tools,
    "function_call": is_null,
    "audio": is_null,
    "refusal": is_null,
}


# --- parsing ---------------------------------------------------------------------------------


def parse_chat_completion(body: bytes, limits: WireLimits | None = None) -> ChatCompletionRequest:
    """Validate one ``POST /v1/chat/completions`` body. Raises only :class:`OpenAiRequestError`."""
    limits = limits or WireLimits()
    document = _document(body, limits)
    unknown = sorted(set(document) - SUPPORTED - set(INERT))
    if unknown:
        name = unknown[0]
        shown = name if _PLAIN_KEY.fullmatch(name) else None
        raise OpenAiRequestError(
            f"Unrecognized request argument supplied: {shown or 'a key that is not a name'}.",
            shown,
        )
    for name, (accepts, reason) in INERT.items():
        if name in document and not accepts(document[name]):
            raise OpenAiRequestError(f"{name}: {reason or 'must be true or false'}.", name)

    model = _model(document.get("model"))
    system, messages = _messages(document.get("messages"), limits)
    stream = _optional_bool(document, "stream")
    include_usage = _stream_options(document, stream)
    request = ChatCompletionRequest(
        model=model,
        system=system,
        messages=messages,
        inference=InferenceConfig(
            max_tokens=_max_tokens(document),
            temperature=_unit_interval(document, "temperature"),
            top_p=_unit_interval(document, "top_p"),
            stop_sequences=_stop(document.get("stop")),
        ),
        stream=stream,
        include_usage=include_usage,
        user=_user(document),
    )
    if request.text_chars > limits.max_message_chars:
        raise OpenAiRequestError(
            f"messages: at most {limits.max_message_chars} characters of text per request "
            "(system messages included).",
            "messages",
        )
    return request


def _document(body: bytes, limits: WireLimits) -> Mapping[str, Any]:
    if not isinstance(body, bytes | bytearray):
        raise OpenAiRequestError("The request body must be bytes of JSON.")
    if len(body) > limits.body_bytes:
        raise OpenAiRequestError(
            f"The request body is {len(body)} bytes; at most {limits.body_bytes} are accepted."
        )
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise OpenAiRequestError("The request body is not valid UTF-8.") from None
    if not text.strip():
        raise OpenAiRequestError("The request body is empty; send a JSON object.")
    try:
        document = json.loads(text)
    except RecursionError:
        raise OpenAiRequestError("The request body is nested too deeply.") from None
    except ValueError:  # JSONDecodeError, and integers past the digit limit
        raise OpenAiRequestError(
            "We could not parse the JSON body of your request: it is not valid JSON."
        ) from None
    if not isinstance(document, dict):
        raise OpenAiRequestError("The request body must be a JSON object.")
    return document


def _text(value: str, param: str) -> str:
    if _SURROGATES.search(value):
        raise OpenAiRequestError(
            f"{param}: is not valid Unicode (it holds a lone UTF-16 surrogate).", param
        )
    return value


def _model(value: Any) -> str:
    if value is None:
        raise OpenAiRequestError("model: required; name the model to use.", "model")
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_MODEL_CHARS:
        raise OpenAiRequestError(
            f"model: must be a model id of 1 to {MAX_MODEL_CHARS} characters.", "model"
        )
    return _text(value, "model")


def _messages(
    value: Any, limits: WireLimits
) -> tuple[tuple[str, ...], tuple[ConverseMessage, ...]]:
    if value is None:
        raise OpenAiRequestError("messages: required.", "messages")
    if not isinstance(value, list):
        raise OpenAiRequestError("messages: must be an array of messages.", "messages")
    if not value:
        raise OpenAiRequestError("messages: must hold at least one message.", "messages")
    if len(value) > limits.max_messages:
        raise OpenAiRequestError(
            f"messages: at most {limits.max_messages} messages per request.", "messages"
        )
    system: list[str] = []
    turns: list[tuple[str, str, int]] = []  # (role, text, index of the first message)
    for index, message in enumerate(value):
        role, text = _message(message, f"messages[{index}]")
        if role == "system":
            system.append(text)
        elif turns and turns[-1][0] == role:
            turns[-1] = (role, f"{turns[-1][1]}\n{text}", turns[-1][2])
        else:
            turns.append((role, text, index))
    if not turns:
        raise OpenAiRequestError(
            "messages: needs a user message; system messages alone ask nothing.", "messages"
        )
    if turns[0][0] != "user":
        first = turns[0][2]
        raise OpenAiRequestError(
            f"messages[{first}].role: the first message after the system messages must be "
            "from the user.",
            f"messages[{first}].role",
        )
    if turns[-1][0] != "user":
        last = len(value) - 1
        raise OpenAiRequestError(
            f"messages[{last}].role: the last message must be from the user.",
            f"messages[{last}].role",
        )
    return tuple(system), tuple(ConverseMessage(role, text) for role, text, _ in turns)  # type: ignore[arg-type]


def _message(message: Any, where: str) -> tuple[str, str]:
    if not isinstance(message, dict):
        raise OpenAiRequestError(f"{where}: must be an object with a role and content.", where)
    raw_role = message.get("role")
    if raw_role in _UNSUPPORTED_ROLES:
        raise OpenAiRequestError(f"{where}.role: {_UNSUPPORTED_ROLES[raw_role]}.", f"{where}.role")
    if raw_role not in _ROLES:
        shown = (
            repr(raw_role) if isinstance(raw_role, str) and _PLAIN_KEY.fullmatch(raw_role) else "it"
        )
        raise OpenAiRequestError(
            f"{where}.role: {shown} is not a supported role (system, developer, user, assistant).",
            f"{where}.role",
        )
    for key in sorted(set(message) - {"role", "content"}):
        accepts = _MESSAGE_EXTRAS.get(key)
        param = f"{where}.{key}" if _PLAIN_KEY.fullmatch(key) else where
        if accepts is None:
            raise OpenAiRequestError(f"{param}: unrecognized message field.", param)
        if not accepts(message[key]):
            raise OpenAiRequestError(f"{param}: is not supported (tools and audio are not).", param)
    text = _content(message.get("content"), f"{where}.content")
    if not text.strip():
        raise OpenAiRequestError(f"{where}.content: must hold some text.", f"{where}.content")
    return _ROLES[raw_role], text


def _content(content: Any, where: str) -> str:
    if isinstance(content, str):
        return _text(content, where)
    if content is None:
        raise OpenAiRequestError(f"{where}: required (a string or text parts).", where)
    if not isinstance(content, list) or not content:
        raise OpenAiRequestError(
            f"{where}: must be a string or a non-empty array of text parts.", where
        )
    texts = []
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if isinstance(kind, str) and kind != "text":
            shown = repr(kind) if _PLAIN_KEY.fullmatch(kind) else "this"
            raise OpenAiRequestError(
                f"{at}.type: {shown} content is not supported; only text parts are.", f"{at}.type"
            )
        try:
            texts.append(_TextPart.model_validate(part).text)
        except ValidationError as err:
            raise OpenAiRequestError(
                f'{at}: must be a text part {{"type": "text", "text": "..."}} '
                f"({_first_problem(err)}).",
                at,
            ) from None
        _text(texts[-1], f"{at}.text")
    # Converse receives the parts as one text, as OpenAI concatenates them for the model.
    return "".join(texts)


def _first_problem(err: ValidationError) -> str:
    first = err.errors(include_url=False, include_input=False)[0]
    location = ".".join(
        str(p) for p in first.get("loc", ()) if isinstance(p, int) or _PLAIN_KEY.fullmatch(str(p))
    )
    message = str(first.get("msg", "is invalid"))
    return f"{location}: {message}" if location else message


def _optional_bool(document: Mapping[str, Any], name: str) -> bool:
    value = document.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise OpenAiRequestError(f"{name}: must be true or false.", name)
    return value


def _stream_options(document: Mapping[str, Any], stream: bool) -> bool:
    options = document.get("stream_options")
    if options is None:
        return False
    if not stream:
        # OpenAI's own rule (chat_completion_stream_options_param.py): "Only set this when you
        # set `stream: true`".
        raise OpenAiRequestError(
            "stream_options: only allowed when stream is true.", "stream_options"
        )
    try:
        parsed = _StreamOptions.model_validate(options)
    except ValidationError as err:
        raise OpenAiRequestError(
            f"stream_options: {_first_problem(err)}.", "stream_options"
        ) from None
    return bool(parsed.include_usage)


def _max_tokens(document: Mapping[str, Any]) -> int | None:
    found: dict[str, int] = {}
    for name in ("max_completion_tokens", "max_tokens"):
        value = document.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OpenAiRequestError(f"{name}: must be a whole number of at least 1.", name)
        found[name] = value
    if len(set(found.values())) > 1:
        raise OpenAiRequestError(
            "max_tokens: differs from max_completion_tokens; send one of them.", "max_tokens"
        )
    return next(iter(found.values()), None)


def _unit_interval(document: Mapping[str, Any], name: str) -> float | None:
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OpenAiRequestError(f"{name}: must be a number.", name)
    if not 0 <= value <= 1:
        raise OpenAiRequestError(
            f"{name}: must be between 0 and 1 (the range Bedrock's models accept).", name
        )
    return float(value)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    sequences: Sequence[Any] = [value] if isinstance(value, str) else value
    if not isinstance(sequences, list) or len(sequences) > MAX_STOP_SEQUENCES:
        raise OpenAiRequestError(
            f"stop: must be a string or an array of up to {MAX_STOP_SEQUENCES} strings.", "stop"
        )
    for index, sequence in enumerate(sequences):
        if not isinstance(sequence, str) or not sequence or len(sequence) > MAX_STOP_SEQUENCE_CHARS:
            raise OpenAiRequestError(
                f"stop[{index}]: must be a string of 1 to {MAX_STOP_SEQUENCE_CHARS} characters.",
                "stop",
            )
        _text(sequence, "stop")
    return tuple(sequences)


def _user(document: Mapping[str, Any]) -> str | None:
    for name in ("user", "safety_identifier"):
        value = document.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > MAX_USER_CHARS:
            raise OpenAiRequestError(
                f"{name}: must be a string of at most {MAX_USER_CHARS} characters.", name
            )
        _text(value, name)
    user = document.get("user")
    return user if user is not None else document.get("safety_identifier")
