"""The OpenAI door's wire layer: requests parsed into Converse shape (or refused naming the
parameter), and responses the real ``openai`` SDK parses - checked with the SDK's own pydantic
types and, through a mock transport, its own client, streaming and error classes."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest
from gateway.contract import ErrorCode
from gateway.openai import responses
from gateway.openai.wire import (
    ChatCompletionRequest,
    ConverseMessage,
    OpenAiRequestError,
    WireLimits,
    body_limit,
    parse_chat_completion,
)
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

MODEL = "amazon.nova-lite-v1:0"
BASE_URL = "https://gateway.example/v1"


def body(**fields: Any) -> bytes:
    document = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], **fields}
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def parse(**fields: Any) -> ChatCompletionRequest:
    return parse_chat_completion(body(**fields))


def refused(raw: bytes, limits: WireLimits | None = None) -> OpenAiRequestError:
    with pytest.raises(OpenAiRequestError) as caught:
        parse_chat_completion(raw, limits)
    return caught.value


# --- accepted requests -----------------------------------------------------------------------


def test_a_minimal_request_is_one_user_message_with_model_defaults():
    request = parse()
    assert request.model == MODEL
    assert request.system == ()
    assert request.messages == (ConverseMessage("user", "Hi"),)
    assert request.inference.to_converse() == {}
    assert (request.stream, request.include_usage, request.user) == (False, False, None)
    assert request.converse_messages() == [{"role": "user", "content": [{"text": "Hi"}]}]


def test_system_and_developer_messages_become_converse_system_blocks_in_order():
    request = parse(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Name a colour."},
        ]
    )
    assert request.system == ("Be brief.", "Answer in French.")
    assert request.converse_system() == [{"text": "Be brief."}, {"text": "Answer in French."}]
    assert [(m.role, m.text) for m in request.messages] == [
        ("user", "Hi"),
        ("assistant", "Hello."),
        ("user", "Name a colour."),
    ]


def test_text_parts_are_joined_into_one_text():
    request = parse(
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "you"}],
            }
        ]
    )
    assert request.messages[0].text == "Hello, you"


def test_consecutive_messages_of_one_role_are_joined_so_converse_sees_alternating_roles():
    request = parse(
        messages=[
            {"role": "user", "content": "First."},
            {"role": "user", "content": "Second."},
            {"role": "assistant", "content": "A."},
            {"role": "assistant", "content": "B."},
            {"role": "user", "content": "Third."},
        ]
    )
    assert [(m.role, m.text) for m in request.messages] == [
        ("user", "First.\nSecond."),
        ("assistant", "A.\nB."),
        ("user", "Third."),
    ]


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
def test_either_token_cap_becomes_max_tokens(name):
    assert parse(**{name: 64}).inference.to_converse() == {"maxTokens": 64}


def test_both_token_caps_are_accepted_when_they_agree():
    assert parse(max_tokens=64, max_completion_tokens=64).inference.max_tokens == 64


def test_sampling_and_stop_sequences_become_the_inference_config():
    request = parse(temperature=0.2, top_p=1, stop=["END", "\n\n"])
    assert request.inference.to_converse() == {
        "temperature": 0.2,
        "topP": 1.0,
        "stopSequences": ["END", "\n\n"],
    }


def test_a_single_stop_string_is_one_stop_sequence():
    assert parse(stop="END").inference.stop_sequences == ("END",)


def test_streaming_with_usage_is_recorded():
    request = parse(stream=True, stream_options={"include_usage": True})
    assert (request.stream, request.include_usage) == (True, True)
    assert parse(stream=True).include_usage is False


def test_user_or_safety_identifier_names_the_end_user():
    assert parse(user="alice").user == "alice"
    assert parse(safety_identifier="hash-1").user == "hash-1"


@pytest.mark.parametrize(
    "fields",
    [
        {"n": 1},
        {"logprobs": False},
        {"response_format": {"type": "text"}},
        {"tools": []},
        {"tool_choice": "none"},
        {"parallel_tool_calls": False},
        {"frequency_penalty": 0},
        {"presence_penalty": 0.0},
        {"service_tier": "auto"},
        {"store": False},
        {"seed": None, "metadata": {}, "logit_bias": None},
        {"modalities": ["text"]},
        {"stream": True, "stream_options": {"include_obfuscation": False}},
    ],
    ids=lambda f: ",".join(f),
)
def test_parameters_that_ask_for_nothing_unsupported_are_accepted(fields):
    assert parse(**fields).messages


def test_message_names_and_empty_assistant_extras_are_accepted():
    request = parse(
        messages=[
            {"role": "user", "content": "Hi", "name": "alice"},
            {"role": "assistant", "content": "Yes?", "tool_calls": [], "refusal": None},
            {"role": "user", "content": "Go on"},
        ]
    )
    assert len(request.messages) == 3


# --- refused requests: exactly one error, naming the parameter ------------------------------


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"presence_penalty": 1}, "presence_penalty"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"seed": 7}, "seed"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"reasoning_effort": "low"}, "reasoning_effort"),
        ({"service_tier": "flex"}, "service_tier"),
        ({"store": True}, "store"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"frobnicate": True}, "frobnicate"),
        ({"model": ...}, "model"),
        ({"model": ""}, "model"),
        ({"model": 7}, "model"),
        ({"messages": ...}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "Hi"}, "messages"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"max_completion_tokens": True}, "max_completion_tokens"),
        ({"max_tokens": 10, "max_completion_tokens": 20}, "max_tokens"),
        ({"temperature": 1.5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": [""]}, "stop"),
        ({"stop": 5}, "stop"),
        ({"stream": "yes"}, "stream"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options"),
        ({"stream": True, "stream_options": {"bogus": True}}, "stream_options"),
        ({"user": 5}, "user"),
        ({"user": "u" * 257}, "user"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_unsupported_or_malformed_parameter_is_refused_by_name(fields, param):
    error = refused(body(**fields))
    assert error.param == param
    assert param in error.message


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "tool", "content": "42", "tool_call_id": "c1"}], "messages[0].role"),
        ([{"role": "function", "content": "42", "name": "f"}], "messages[0].role"),
        ([{"role": "critic", "content": "Hi"}], "messages[0].role"),
        ([{"content": "Hi"}], "messages[0].role"),
        (["Hi"], "messages[0]"),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                }
            ],
            "messages[0].content[0].type",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Listen:"},
                        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}},
                    ],
                }
            ],
            "messages[0].content[1].type",
        ),
        ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0]"),
        ([{"role": "user", "content": [{"text": "no type"}]}], "messages[0].content[0]"),
        ([{"role": "user", "content": []}], "messages[0].content"),
        ([{"role": "user", "content": None}], "messages[0].content"),
        ([{"role": "user", "content": "   "}], "messages[0].content"),
        ([{"role": "user", "content": "\ud800"}], "messages[0].content"),
        ([{"role": "user", "content": "Hi", "cache_control": {}}], "messages[0].cache_control"),
        (
            [
                {"role": "user", "content": "Hi"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c", "type": "function"}],
                },
                {"role": "user", "content": "Go"},
            ],
            "messages[1].tool_calls",
        ),
        ([{"role": "system", "content": "Only rules."}], "messages"),
        (
            [{"role": "assistant", "content": "I start."}, {"role": "user", "content": "Hi"}],
            "messages[0].role",
        ),
        (
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
            "messages[1].role",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_unsupported_or_malformed_message_is_refused_by_path(messages, param):
    assert refused(body(messages=messages)).param == param


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        ('{"model": "m\u00e9"}'.encode("latin-1"), "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
    ],
    ids=["empty", "malformed", "array", "latin-1", "deep"],
)
def test_a_body_that_is_not_a_json_object_is_refused_as_a_whole(raw, words):
    error = refused(raw, WireLimits(max_body_bytes=1_000_000))
    assert error.param is None
    assert words in error.message


def test_a_body_over_the_size_cap_is_refused_before_it_is_parsed():
    limits = WireLimits(max_messages=2, max_message_chars=100)
    oversized = b'{"model": "' + b"x" * limits.body_bytes + b'"}'
    error = refused(oversized, limits)
    assert error.param is None
    assert str(limits.body_bytes) in error.message


def test_the_size_cap_leaves_room_for_the_largest_valid_request():
    limits = WireLimits(max_messages=2, max_message_chars=100)
    # The costliest text: characters outside the BMP, written as escaped surrogate pairs.
    largest = json.dumps(
        {
            "model": "m" * 256,
            "messages": [
                {"role": "user", "content": "\U0001f600" * 50},
                {"role": "user", "content": "\U0001f600" * 50},
            ],
        }
    ).encode()
    assert len(largest) <= body_limit(2, 100) == limits.body_bytes


def test_too_many_messages_or_too_much_text_is_refused():
    limits = WireLimits(max_messages=2, max_message_chars=10)
    three = body(messages=[{"role": "user", "content": "a"}] * 3)
    assert refused(three, limits).param == "messages"
    long_system = body(
        messages=[{"role": "system", "content": "s" * 8}, {"role": "user", "content": "uuu"}]
    )
    assert refused(long_system, limits).param == "messages"


def test_a_key_that_is_not_a_plain_name_is_not_echoed_back():
    error = refused(body(**{"<script>": 1}))
    assert error.param is None
    assert "<script>" not in error.message


# --- responses, parsed by the openai package's own types ------------------------------------


def test_a_non_streamed_answer_is_a_chat_completion_the_sdk_parses():
    raw = responses.chat_completion(
        id="chatcmpl-1",
        created=1700000000,
        model=MODEL,
        text="Bonjour.",
        stop_reason="end_turn",
        input_tokens=12,
        output_tokens=3,
    )
    completion = ChatCompletion.model_validate(raw)
    assert completion.model_extra == {}
    assert completion.choices[0].message.content == "Bonjour."
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.total_tokens) == (12, 15)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("content_filtered", "content_filter"),
        ("guardrail_intervened", "content_filter"),
        (None, "stop"),
    ],
)
def test_bedrock_stop_reasons_map_to_openai_finish_reasons(stop_reason, finish):
    assert responses.finish_reason(stop_reason) == finish


def _events(stream: bytes) -> list[str]:
    assert stream.endswith(b"\n\n")
    events = stream.decode().split("\n\n")[:-1]
    assert all(e.startswith("data: ") for e in events)
    return [e.removeprefix("data: ") for e in events]


def _streamed(include_usage: bool) -> bytes:
    chunks = responses.ChunkStream(model=MODEL, created=1700000000, include_usage=include_usage)
    return (
        chunks.start()
        + chunks.delta("Bon")
        + chunks.delta("jour.")
        + chunks.finish("max_tokens")
        + chunks.end(12, 3)
    )


def test_a_streamed_answer_is_role_then_text_then_finish_then_done():
    events = _events(_streamed(include_usage=False))
    assert events[-1] == "[DONE]"
    parsed = [ChatCompletionChunk.model_validate_json(e) for e in events[:-1]]
    assert all(c.model_extra == {} for c in parsed)
    assert len({c.id for c in parsed}) == 1
    assert parsed[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in parsed) == "Bonjour."
    assert [c.choices[0].finish_reason for c in parsed] == [None, None, None, "length"]
    assert all(c.usage is None for c in parsed)
    assert all("usage" not in json.loads(e) for e in events[:-1])


def test_include_usage_adds_a_usage_chunk_with_no_choices_before_done():
    events = _events(_streamed(include_usage=True))
    assert events[-1] == "[DONE]"
    parsed = [ChatCompletionChunk.model_validate_json(e) for e in events[:-1]]
    *answer, last = parsed
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (12, 3)
    # Every other chunk carries "usage": null, as OpenAI's do.
    assert all(json.loads(e)["usage"] is None for e in events[: len(answer)])


def test_the_models_list_is_what_the_sdk_reads():
    raw = responses.models_list([MODEL, "amazon.nova-micro-v1:0"], created=5)
    assert raw["object"] == "list"
    models = [Model.model_validate(m) for m in raw["data"]]
    assert [m.id for m in models] == [MODEL, "amazon.nova-micro-v1:0"]
    assert all(m.model_extra == {} and m.owned_by == "ai-gateway" for m in models)


# --- through the SDK's own client ------------------------------------------------------------


def _client(handler) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="token",
        base_url=BASE_URL,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )


def test_the_sdk_reads_a_completion_a_stream_and_the_models():
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/models"):
            return httpx2.Response(200, json=responses.models_list([MODEL]))
        sent = parse_chat_completion(request.content)
        if sent.stream:
            return httpx2.Response(
                200,
                content=_streamed(sent.include_usage),
                headers={"content-type": responses.SSE_CONTENT_TYPE},
            )
        completion = responses.chat_completion(
            id="chatcmpl-2",
            created=1,
            model=sent.model,
            text="Hi!",
            stop_reason="end_turn",
            input_tokens=5,
            output_tokens=2,
        )
        return httpx2.Response(200, json=completion)

    client = _client(handler)
    assert [m.id for m in client.models.list()] == [MODEL]
    messages = [{"role": "user", "content": "Hi"}]
    completion = client.chat.completions.create(model=MODEL, messages=messages)
    assert completion.choices[0].message.content == "Hi!"
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Bonjour."
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 15


@pytest.mark.parametrize(
    ("code", "status", "sdk_error", "kind"),
    [
        (ErrorCode.INVALID_REQUEST, 400, openai.BadRequestError, "invalid_request_error"),
        (responses.TURN_TOO_LARGE, 400, openai.BadRequestError, "invalid_request_error"),
        (ErrorCode.UNAUTHORIZED, 401, openai.AuthenticationError, "authentication_error"),
        (ErrorCode.MODEL_NOT_ALLOWED, 403, openai.PermissionDeniedError, "permission_error"),
        (ErrorCode.ACCOUNT_BLOCKED, 403, openai.PermissionDeniedError, "permission_error"),
        (ErrorCode.DUPLICATE_TURN, 409, openai.ConflictError, "invalid_request_error"),
        (ErrorCode.RATE_LIMITED, 429, openai.RateLimitError, "rate_limit_error"),
        (ErrorCode.LIMIT_EXCEEDED, 429, openai.RateLimitError, "insufficient_quota"),
        (ErrorCode.INTERNAL_ERROR, 500, openai.InternalServerError, "server_error"),
        (ErrorCode.MODEL_ERROR, 502, openai.InternalServerError, "server_error"),
        (ErrorCode.USAGE_UNAVAILABLE, 503, openai.InternalServerError, "server_error"),
        (ErrorCode.MODEL_THROTTLED, 503, openai.InternalServerError, "server_error"),
        (ErrorCode.MODEL_TIMEOUT, 504, openai.InternalServerError, "server_error"),
    ],
)
def test_every_gateway_error_reaches_the_sdk_as_its_error_class_with_the_code(
    code, status, sdk_error, kind
):
    answer = responses.error(code, retry_after_seconds=2.2 if status == 429 else None)
    assert answer.status == status

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=answer.json_bytes(), headers=answer.headers)

    with pytest.raises(sdk_error) as caught:
        _client(handler).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}]
        )
    assert caught.value.status_code == status
    assert caught.value.code == str(code)
    assert caught.value.type == kind
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "3"


def test_only_provider_failures_are_5xx():
    caller_codes = {
        ErrorCode.INVALID_REQUEST,
        ErrorCode.UNAUTHORIZED,
        ErrorCode.MODEL_NOT_ALLOWED,
        ErrorCode.ACCOUNT_BLOCKED,
        ErrorCode.DUPLICATE_TURN,
        ErrorCode.RATE_LIMITED,
        ErrorCode.LIMIT_EXCEEDED,
        responses.TURN_TOO_LARGE,
    }
    for code in ErrorCode:
        assert (responses.error(code).status >= 500) == (code not in caller_codes), code


def test_a_wire_refusal_is_a_400_naming_the_param():
    error = refused(body(n=3))
    answer = responses.invalid_request(error.message, error.param)
    assert answer.status == 400
    assert answer.body["error"]["param"] == "n"
    assert answer.body["error"]["code"] == "invalid_request"


def test_an_unknown_code_is_an_internal_error_not_a_leak():
    answer = responses.error("something_new")
    assert (answer.status, answer.body["error"]["code"]) == (500, "internal_error")


def test_a_too_large_turn_names_the_messages():
    assert responses.error(responses.TURN_TOO_LARGE).body["error"]["param"] == "messages"


@pytest.mark.parametrize(("seconds", "header"), [(0, "1"), (0.2, "1"), (59.01, "60"), (120, "120")])
def test_retry_after_is_whole_seconds_rounded_up(seconds, header):
    assert responses.retry_after_value(seconds) == header


def test_an_error_mid_stream_is_raised_by_the_sdk_with_its_code():
    chunks = responses.ChunkStream(model=MODEL, created=1)
    failure = responses.error(ErrorCode.MODEL_ERROR)
    content = chunks.start() + chunks.delta("Par") + failure.sse_bytes()

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, content=content, headers={"content-type": responses.SSE_CONTENT_TYPE}
        )

    stream = _client(handler).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "Par"]
    assert caught.value.code == "model_error"


def test_the_sdk_can_send_what_the_wire_accepts():
    seen: list[ChatCompletionRequest] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(parse_chat_completion(request.content))
        return httpx2.Response(
            200,
            json=responses.chat_completion(
                id="c",
                created=1,
                model=MODEL,
                text="ok",
                stop_reason="end_turn",
                input_tokens=1,
                output_tokens=1,
            ),
        )

    _client(handler).chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        ],
        max_completion_tokens=32,
        temperature=0.5,
        top_p=0.9,
        stop=["END"],
        n=1,
        user="alice",
    )
    (request,) = seen
    assert request.system == ("Be brief.",)
    assert request.inference.to_converse() == {
        "maxTokens": 32,
        "temperature": 0.5,
        "topP": 0.9,
        "stopSequences": ["END"],
    }
    assert request.user == "alice"
