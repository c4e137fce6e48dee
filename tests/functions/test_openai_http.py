"""The door's HTTP server as the Lambda Web Adapter reaches it: readiness, routing, the caller
from API Gateway's request context, and bad requests refused with OpenAI's envelope before any
door code runs."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import openai_http
import pytest
from gateway.openai.wire import WireLimits

CONTEXT = json.dumps({"authorizer": {"claims": {"sub": "user-1", "client_id": "web"}}})


class RecordingDoor(openai_http.NotWiredDoor):
    def __init__(self) -> None:
        self.requests = []

    def chat(self, request, context, start):
        self.requests.append((request, context))
        super().chat(request, context, start)


@pytest.fixture
def server() -> Iterator[tuple[int, RecordingDoor]]:
    door = RecordingDoor()
    httpd = openai_http.serve(door, WireLimits(max_messages=4, max_message_chars=100), port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], door
    finally:
        httpd.shutdown()
        httpd.server_close()


def call(port, method, path, body=None, context=CONTEXT):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if context is not None:
        headers[openai_http.REQUEST_CONTEXT_HEADER] = context
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def test_the_readiness_check_answers(server):
    port, _ = server
    assert call(port, "GET", "/healthz", context=None) == (200, b"ok")


def test_a_request_without_an_authorised_caller_is_a_401(server):
    port, door = server
    status, body = call(port, "POST", "/v1/chat/completions", b"{}", context=None)
    assert status == 401
    assert json.loads(body)["error"]["code"] == "unauthorized"
    assert door.requests == []


def test_a_bad_body_is_a_400_naming_the_param_and_never_reaches_the_door(server):
    port, door = server
    payload = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "n": 2})
    status, body = call(port, "POST", "/v1/chat/completions", payload.encode())
    assert status == 400
    assert json.loads(body)["error"]["param"] == "n"
    assert door.requests == []


def test_a_body_over_the_cap_is_refused_unread(server):
    port, door = server
    status, body = call(port, "POST", "/v1/chat/completions", b"x" * 200_000)
    assert status == 400
    assert door.requests == []


def test_a_valid_request_reaches_the_door_with_the_callers_context(server):
    port, door = server
    payload = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Hi"}]})
    status, body = call(port, "POST", "/api/v1/chat/completions", payload.encode())
    assert status == 501  # not wired to the turn core yet
    ((request, context),) = door.requests
    assert request.messages[0].text == "Hi"
    assert context["authorizer"]["claims"]["sub"] == "user-1"


def test_unknown_paths_are_404s(server):
    port, _ = server
    status, body = call(port, "GET", "/v1/embeddings")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "unknown_url"
