"""Prepared-response keys and the operator CLI that manages them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from gateway.prepared import (
    PreparedResponse,
    PreparedResponseTable,
    candidate_keys,
    normalise_prompt,
    pick,
    prepared_key,
)

from tests.functions.support import create_tables
from tools import prepared_responses as cli


@pytest.mark.parametrize(
    ("prompt", "normalised"),
    [
        ("What is the gateway?", "what is the gateway"),
        ("  WHAT   is\tthe\ngateway ?!  ", "what is the gateway"),
        ("Ｗｈａｔ ｉｓ ｉｔ？", "what is it"),  # full-width forms fold under NFKC
        ("Straße", "strasse"),  # casefold, not lower
        ("¿Qué es?", "¿qué es"),  # only trailing punctuation goes
        ("...", ""),
    ],
)
def test_prompts_are_normalised_before_hashing(prompt, normalised):
    assert normalise_prompt(prompt) == normalised


def test_a_key_is_the_scope_and_the_sha256_of_the_normalised_prompt():
    key = prepared_key("*", "Hello!")
    assert key == "prep#*#" + __import__("hashlib").sha256(b"hello").hexdigest()
    assert prepared_key("*", "hello") == key
    assert prepared_key("amazon.nova-lite-v1:0", "hello") != key


def test_the_models_own_entry_is_looked_up_before_the_any_model_one():
    assert candidate_keys("m", "hi") == (prepared_key("m", "hi"), prepared_key("*", "hi"))


def test_an_expired_or_empty_entry_is_never_served():
    keys = candidate_keys("m", "hi")
    expired = PreparedResponse(keys[0], "hi", "old", expires_at=100)
    empty = PreparedResponse(keys[1], "hi", "")
    assert pick({keys[0]: expired, keys[1]: empty}, keys, now=100) is None
    fresh = PreparedResponse(keys[1], "hi", "new", expires_at=101)
    assert pick({keys[0]: expired, keys[1]: fresh}, keys, now=100) is fresh


@pytest.fixture
def table(aws: None) -> Iterator[PreparedResponseTable]:
    create_tables(boto3.client("dynamodb", region_name="us-east-1"))
    yield PreparedResponseTable(
        boto3.resource("dynamodb", region_name="us-east-1").Table("prepared")
    )


def run(table: PreparedResponseTable, *argv: str) -> int:
    return cli.main(["--table", "prepared", *argv], table=table)


def test_the_cli_puts_lists_and_deletes_entries(table, capsys, tmp_path):
    answer = tmp_path / "answer.md"
    answer.write_text("A governed door\nto models.", encoding="utf-8")

    assert (
        run(table, "put", "--prompt", "What is the gateway?", "--response-file", str(answer)) == 0
    )
    assert run(table, "put", "--prompt", "Hi", "--response", "Hello!", "--model",
               "amazon.nova-lite-v1:0", "--expires-at", "4102444800") == 0  # fmt: skip
    capsys.readouterr()

    assert run(table, "list", "--json") == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["scope"], e["prompt"], e["expiresAt"]) for e in listed] == [
        ("*", "What is the gateway?", None),
        ("amazon.nova-lite-v1:0", "Hi", 4102444800),
    ]
    assert listed[0]["response"] == "A governed door\nto models."
    assert listed[0]["key"] == prepared_key("*", "what is the gateway")

    assert run(table, "delete", "--prompt", "what is the GATEWAY") == 0
    assert run(table, "delete", "--prompt", "what is the GATEWAY") == 1
    assert [e.prompt for e in table.entries()] == ["Hi"]


def test_the_cli_refuses_an_empty_response(table, capsys):
    assert run(table, "put", "--prompt", "x", "--response", "   ") == 2
    assert list(table.entries()) == []


def test_the_cli_opens_the_named_table_itself(table, capsys):
    argv = [
        "--table",
        "prepared",
        "--region",
        "us-east-1",
        "put",
        "--prompt",
        "a",
        "--response",
        "b",
    ]
    assert cli.main(argv) == 0
    assert [(e.prompt, e.response) for e in table.entries()] == [("a", "b")]
