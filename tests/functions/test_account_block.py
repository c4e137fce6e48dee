"""An operator's block refused on the turn's own admission write: a token issued before the block
gets ``account_blocked``, nothing is reserved or charged, and no request is added to a turn."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import boto3
import pytest
from gateway.blocks import TOKENS_VALID_AFTER, blocked
from gateway.metering import Admission, plan_turn
from gateway.usage import UsageSnapshot
from gateway.usage_store import DynamoTurnStore

from tests.functions.support import (
    SUB,
    charged_attributes,
    chat_payload,
    create_tables,
    publish_event,
    terminal,
    tier_config,
)
from tests.support.appsync import lambda_context

BLOCKED_AT = 1_795_000_000
FREE = tier_config().tiers["free"]


def signed_in(gateway, auth_time: int | None, *payloads: Any) -> list[dict[str, Any]]:
    """Run ``payloads`` as a user whose token says it signed in at ``auth_time``."""
    event = publish_event(*payloads)
    claims = event["identity"]["claims"]
    if auth_time is not None:
        claims["auth_time"] = auth_time
    gateway.handler()(event, lambda_context())
    return [e for e in gateway.endpoint.events(f"/replies/{SUB}") if e["type"] != "delta"]


def block(gateway, at: int = BLOCKED_AT) -> None:
    """What ``python -m tools.admin block`` writes on the usage item."""
    gateway.dynamodb.update_item(
        TableName="usage",
        Key={"pk": {"S": f"user#{SUB}"}},
        UpdateExpression="SET #b = :at ADD #v :one",
        ExpressionAttributeNames={"#b": TOKENS_VALID_AFTER, "#v": "version"},
        ExpressionAttributeValues={":at": {"N": str(at)}, ":one": {"N": "1"}},
    )


def test_a_token_from_before_the_block_is_refused_and_nothing_is_reserved_or_charged(gateway):
    # GIVEN a user with usage, then blocked
    signed_in(gateway, BLOCKED_AT - 600, chat_payload(turnId="t-before"))
    block(gateway)
    charged = charged_attributes(gateway.usage_item())
    calls_before = len(gateway.model.requests)
    # WHEN a turn arrives with the token they held
    events = signed_in(gateway, BLOCKED_AT - 600, chat_payload(turnId="t-held"))
    # THEN it is refused with account_blocked, not retryable, and neither run nor charged
    error = terminal([e for e in events if e["turnId"] == "t-held"])
    assert (error["code"], error["retryable"]) == ("account_blocked", False)
    assert len(gateway.model.requests) == calls_before
    assert charged_attributes(gateway.usage_item()) == charged


def test_a_token_signed_in_after_the_block_is_admitted(gateway):
    block(gateway)
    events = signed_in(gateway, BLOCKED_AT + 1, chat_payload(turnId="t-after"))
    assert terminal(events)["type"] == "done"


def test_a_token_naming_no_sign_in_time_is_refused_once_a_block_exists(gateway):
    block(gateway)
    events = signed_in(gateway, None, chat_payload(turnId="t-unknown"))
    assert terminal(events)["code"] == "account_blocked"


def test_a_warm_function_refuses_at_once_though_it_kept_the_item_from_before_the_block(gateway):
    # GIVEN one handler (a warm function) that admitted a turn and kept the item
    handler = gateway.handler()

    def turn(turn_id: str) -> dict[str, Any]:
        event = publish_event(chat_payload(turnId=turn_id))
        event["identity"]["claims"]["auth_time"] = BLOCKED_AT - 60
        handler(event, lambda_context())
        return terminal(
            [e for e in gateway.endpoint.events(f"/replies/{SUB}") if e["turnId"] == turn_id]
        )

    assert turn("t-1")["type"] == "done"
    # WHEN the account is blocked and the same token sends the next turn
    block(gateway)
    charged = charged_attributes(gateway.usage_item())
    # THEN that very turn is refused, and the user is charged nothing for it (a model call the
    # warm function may have opened on its kept item is cancelled, at the operator's cost)
    assert turn("t-2")["code"] == "account_blocked"
    assert charged_attributes(gateway.usage_item()) == charged


def test_the_reservation_write_itself_refuses_a_blocked_token(aws):
    # GIVEN a store and an item blocked after the snapshot a turn planned on was read
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_tables(client)
    store = DynamoTurnStore(lambda: client, "usage", "prepared")
    key = f"user#{SUB}"
    client.put_item(TableName="usage", Item={"pk": {"S": key}, "version": {"N": "3"}})
    seen = store.read(key, ()).usage
    client.update_item(
        TableName="usage",
        Key={"pk": {"S": key}},
        UpdateExpression="SET #b = :at",
        ExpressionAttributeNames={"#b": TOKENS_VALID_AFTER},
        ExpressionAttributeValues={":at": {"N": str(BLOCKED_AT)}},
    )
    admission = plan_turn(seen, FREE, BLOCKED_AT + 5, 100, "r-1")
    assert isinstance(admission, Admission)
    # WHEN the write is sent with the version it read (unchanged) and an older sign-in
    current = store.reserve(
        key, replace(admission, signed_in_at=BLOCKED_AT - 1), seen, BLOCKED_AT + 5
    )
    # THEN the condition fails, nothing is reserved, and the item as it is comes back
    assert current is not None and current.tokens_valid_after == BLOCKED_AT
    item = client.get_item(TableName="usage", Key={"pk": {"S": key}})["Item"]
    assert not [name for name in item if name.startswith("r#")]


@pytest.mark.parametrize(
    ("valid_after", "auth_time", "refused"),
    [
        (0, None, False),
        (0, 5, False),
        (100, 99, True),
        (100, 100, True),
        (100, 101, False),
        (100, None, True),
    ],
)
def test_which_tokens_a_block_refuses(valid_after, auth_time, refused):
    assert (blocked(valid_after, auth_time) is not None) is refused


def test_the_block_time_is_read_from_the_usage_item():
    snapshot = UsageSnapshot.from_item({"pk": "user#x", TOKENS_VALID_AFTER: BLOCKED_AT})
    assert snapshot.tokens_valid_after == BLOCKED_AT


def test_both_doors_carry_the_tokens_sign_in_time_into_the_caller():
    from gateway.access import caller_from_identity
    from gateway.openai.identity import caller_from_claims

    from tests.functions.support import cognito_identity

    # AppSync: the token's claims as JSON numbers
    identity = cognito_identity()
    identity["claims"].update({"auth_time": 1_700_000_000, "iat": 1_700_000_500})
    caller = caller_from_identity(identity)
    assert caller is not None and caller.auth_time == 1_700_000_000
    # API Gateway's REST Cognito authorizer: every claim a string, iat a date
    claims = {
        "sub": SUB,
        "username": "alice",
        "auth_time": "1700000000",
        "iat": "Tue Nov 14 22:13:20 UTC 2023",
    }
    rest = caller_from_claims(claims, {})
    assert rest is not None and rest.auth_time == 1_700_000_000
    # only iat, as a number: used; neither: unknown
    assert caller_from_claims(
        {**claims, "auth_time": None, "iat": 1_700_000_001}, {}
    ).auth_time == (1_700_000_001)
    no_time = caller_from_claims({"sub": SUB, "username": "alice"}, {})
    assert no_time is not None and no_time.auth_time is None
