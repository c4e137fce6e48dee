"""The OpenAI-compatible door's bill: API Gateway's REST API instead of the Event API's lines,
the access log on top of the function's logs, a streamed response counted per 10 MB."""

from __future__ import annotations

import json

import pytest

from bench import openai_door
from bench.cost import cost_per_million_turns, load_prices
from bench.door_worker import _has_text
from components.openai_api import ACCESS_LOG_FORMAT

PRICES = load_prices()


def _turn(**overrides):
    turn = {
        "label": "paced",
        "billed_ms": 10_000.0,
        "aws_requests": {"dynamodb:UpdateItem": 2, "firehose:PutRecord": 1},
        "read_units": 0.0,
        "write_units": 10.0,
        "firehose_record_bytes": [900],
        "log_bytes": 1_000,
        "response_bytes": 120_000,
    }
    return {**turn, **overrides}


def _door(**overrides):
    return openai_door.DoorBenchmark(
        "openai", 256, None, emulated=True, access_log_bytes=400, **overrides
    )


def test_the_door_pays_api_gateway_per_request_and_no_event_api_lines():
    bill = openai_door.bill(_turn(), _door(), PRICES)
    assert bill.lines["API Gateway REST API requests"] == pytest.approx(3.5)
    assert not any(line.startswith("AppSync") for line in bill.lines)
    assert set(bill.lines) == set(bill.prices)
    # The shared lines are priced exactly as the Events door's, logs with the access log added.
    events = cost_per_million_turns(openai_door.footprint(_turn(), 0), PRICES, 256)
    assert bill.lines["DynamoDB writes"] == events.lines["DynamoDB writes"]
    assert bill.lines["Lambda duration (whole invocation)"] == pytest.approx(
        10 * 0.25 * PRICES["lambda_arm64"]["usd_per_gb_second"] * 1_000_000
    )
    logs_with = bill.lines["CloudWatch Logs (incl. EMF)"]
    assert logs_with == pytest.approx(events.lines["CloudWatch Logs (incl. EMF)"] * 1.4)


def test_a_streamed_response_is_billed_one_request_per_10_mb_started():
    big = openai_door.bill(_turn(response_bytes=25 * 1024**2), _door(), PRICES)
    assert big.lines["API Gateway REST API requests"] == pytest.approx(3 * 3.5)


def test_the_access_log_line_is_sized_from_the_stack_format():
    size = openai_door.access_log_line_bytes()
    line = ACCESS_LOG_FORMAT
    assert "$context" in line
    # Every variable of the declared format has a representative value, so none is left raw.
    for variable in openai_door._ACCESS_LOG_EXAMPLE:
        line = line.replace(variable, "x")
    assert "$context" not in line
    assert 300 < size < 1_000


@pytest.mark.parametrize(
    ("chunk", "has_text"),
    [
        ({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}, False),
        ({"choices": [{"index": 0, "delta": {"content": "Hello"}}]}, True),
        ({"choices": [], "usage": {"completion_tokens": 5}}, False),
    ],
)
def test_the_first_delta_is_the_first_chunk_with_answer_text(chunk, has_text):
    assert _has_text(b"data: " + json.dumps(chunk).encode() + b"\n") is has_text
    assert _has_text(b"data: [DONE]\n") is False
