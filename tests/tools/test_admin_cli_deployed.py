"""``python -m tools.admin`` on a deployed stack's outputs, against moto: the stack's user pool,
usage table and tier parameter, the caller's identity from STS and the audit lines in the
stack's log group; Athena (which moto only answers with canned results) through botocore's
Stubber, with the request shapes the service model defines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from gateway.blocks import TOKENS_VALID_AFTER
from moto import mock_aws

from local.stack import load_stack
from tools.admin.__main__ import main
from tools.admin.turns import AthenaTurnHistory, UserTotals, ranked

REGION = "us-east-1"
AUDIT_GROUP = "/ai-gateway/ai-gateway-dev/admin-audit"
NOW = 1_795_000_000.0


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A deployed stack's resources in moto and its outputs file."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        settings = load_stack("dev")
        cognito = boto3.client("cognito-idp", region_name=REGION)
        pool = cognito.create_user_pool(PoolName="users")["UserPool"]["Id"]
        client = cognito.create_user_pool_client(
            UserPoolId=pool,
            ClientName="web",
            AccessTokenValidity=60,
            IdTokenValidity=60,
            TokenValidityUnits={"AccessToken": "minutes", "IdToken": "minutes"},
        )["UserPoolClient"]["ClientId"]
        for tier in settings.tier_config.tiers.values():
            cognito.create_group(UserPoolId=pool, GroupName=tier.name, Precedence=tier.precedence)
        cognito.admin_create_user(UserPoolId=pool, Username="ana", MessageAction="SUPPRESS")
        cognito.admin_add_user_to_group(UserPoolId=pool, Username="ana", GroupName="free")
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="usage",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name="/ai-gateway/dev/tiers",
            Type="String",
            Value=json.dumps(settings.tier_config.to_document()),
        )
        boto3.client("logs", region_name=REGION).create_log_group(logGroupName=AUDIT_GROUP)
        outputs = {
            "region": REGION,
            "userPoolId": pool,
            "userPoolClientId": client,
            "usageTableName": "usage",
            "tierConfigParameterName": "/ai-gateway/dev/tiers",
            "adminAuditLogGroupName": AUDIT_GROUP,
            "analyticsWorkgroupName": "ai-gateway-dev",
            "analyticsDatabaseName": "ai_gateway_dev",
        }
        path = tmp_path / "outputs.json"
        path.write_text(json.dumps(outputs))
        yield {"outputs": outputs, "path": path, "cognito": cognito, "dynamodb": dynamodb}


def cli(stack: dict[str, Any], *args: str) -> int:
    return main(["--outputs", str(stack["path"]), *args])


def audit_lines() -> list[dict[str, Any]]:
    logs = boto3.client("logs", region_name=REGION)
    lines = []
    for stream in logs.describe_log_streams(logGroupName=AUDIT_GROUP)["logStreams"]:
        events = logs.get_log_events(
            logGroupName=AUDIT_GROUP, logStreamName=stream["logStreamName"]
        )["events"]
        lines += [json.loads(e["message"]) for e in events]
    return lines


def sub_of(stack: dict[str, Any]) -> str:
    user = stack["cognito"].admin_get_user(
        UserPoolId=stack["outputs"]["userPoolId"], Username="ana"
    )
    return next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")


def test_set_tier_moves_the_group_audits_the_caller_and_states_the_token_lifetime(stack, capsys):
    assert cli(stack, "set-tier", "ana", "pro") == 0
    out = capsys.readouterr().out
    assert "next sign-in or token refresh" in out and "1 hour" in out
    groups = stack["cognito"].admin_list_groups_for_user(
        UserPoolId=stack["outputs"]["userPoolId"], Username="ana"
    )["Groups"]
    assert [g["GroupName"] for g in groups] == ["pro"]
    (line,) = audit_lines()
    caller = boto3.client("sts", region_name=REGION).get_caller_identity()["Arn"]
    assert (line["who"], line["action"], line["target"]["username"]) == (caller, "set-tier", "ana")
    assert (line["before"]["tier"], line["after"]["tier"]) == ("free", "pro")


def test_block_disables_the_user_and_marks_the_usage_item(stack):
    assert cli(stack, "block", "ana") == 0
    user = stack["cognito"].admin_get_user(
        UserPoolId=stack["outputs"]["userPoolId"], Username="ana"
    )
    assert user["Enabled"] is False
    item = stack["dynamodb"].get_item(
        TableName="usage", Key={"pk": {"S": f"user#{sub_of(stack)}"}}
    )["Item"]
    assert int(item[TOKENS_VALID_AFTER]["N"]) > 0 and item["version"] == {"N": "1"}
    assert [a["action"] for a in audit_lines()] == ["block"]
    assert cli(stack, "unblock", "ana") == 0
    user = stack["cognito"].admin_get_user(
        UserPoolId=stack["outputs"]["userPoolId"], Username="ana"
    )
    assert user["Enabled"] is True
    # the mark stays: tokens from before the block remain refused
    item = stack["dynamodb"].get_item(
        TableName="usage", Key={"pk": {"S": f"user#{sub_of(stack)}"}}
    )["Item"]
    assert TOKENS_VALID_AFTER in item


def test_users_reads_the_pool_and_the_usage_table(stack, capsys):
    sub = sub_of(stack)
    stack["dynamodb"].put_item(
        TableName="usage",
        Item={"pk": {"S": f"user#{sub}"}, "version": {"N": "1"}, "m#2099-01#o": {"N": "5"}},
    )
    assert cli(stack, "--json", "users") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["username"], row["tier"], row["sub"]) == ("ana", "free", sub)


def test_options_may_follow_the_command_as_make_admin_passes_them(stack, capsys):
    assert main(["users", "--json", "--outputs", str(stack["path"])]) == 0
    assert [r["username"] for r in json.loads(capsys.readouterr().out)] == ["ana"]
    with pytest.raises(SystemExit) as refused:
        main(["--local", "users", "--outputs", str(stack["path"])])
    assert refused.value.code == 2


def test_an_unknown_user_or_tier_changes_nothing_and_writes_no_audit_line(stack, capsys):
    assert cli(stack, "set-tier", "bob", "pro") == 1
    assert "bob" in capsys.readouterr().err
    assert cli(stack, "set-tier", "ana", "gold") == 1
    assert "gold" in capsys.readouterr().err
    assert audit_lines() == []


def test_outputs_without_the_audit_log_group_are_refused_before_any_change(stack, capsys):
    outputs = {k: v for k, v in stack["outputs"].items() if k != "adminAuditLogGroupName"}
    stack["path"].write_text(json.dumps(outputs))
    assert cli(stack, "block", "ana") == 1
    assert "adminAuditLogGroupName" in capsys.readouterr().err
    user = stack["cognito"].admin_get_user(
        UserPoolId=stack["outputs"]["userPoolId"], Username="ana"
    )
    assert user["Enabled"] is True


def _athena_answer(stubber: Stubber, query_id: str, rows: list[list[str | None]]) -> None:
    """A finished query and its rows (a NULL cell carries no ``VarCharValue``)."""
    stubber.add_response(
        "get_query_execution",
        {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}},
        {"QueryExecutionId": query_id},
    )
    stubber.add_response(
        "get_query_results",
        {
            "ResultSet": {
                "Rows": [
                    {"Data": [{"VarCharValue": v} if v is not None else {} for v in row]}
                    for row in rows
                ]
            }
        },
        {"QueryExecutionId": query_id},
    )


def test_top_users_come_from_the_turns_table_through_the_workgroup():
    athena = boto3.client(
        "athena", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(athena) as stubber:
        stubber.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q-1"},
            {
                "QueryString": (
                    "SELECT user_id, count_if(outcome = 'done') AS turns, "
                    "sum(input_tokens + output_tokens) AS tokens, sum(cost_usd) AS cost_usd "
                    'FROM "ai_gateway_dev"."turns" WHERE dt >= ? GROUP BY user_id'
                ),
                "WorkGroup": "ai-gateway-dev",
                "ExecutionParameters": ["'2026-11-12'"],
            },
        )
        _athena_answer(
            stubber,
            "q-1",
            [
                ["user_id", "turns", "tokens", "cost_usd"],
                ["a", "3", "900", "0.01"],
                ["b", "9", "100", None],
            ],
        )
        history = AthenaTurnHistory(athena, "ai-gateway-dev", "ai_gateway_dev", clock=lambda: NOW)
        totals = history.totals(7)
    assert totals == [UserTotals("a", 3, 900, 0.01), UserTotals("b", 9, 100, 0.0)]
    assert [t.user_id for t in ranked(totals, "turns", 10)] == ["b", "a"]
    assert [t.user_id for t in ranked(totals, "tokens", 1)] == ["a"]


def test_recent_turns_are_asked_for_one_user_with_the_user_as_a_parameter():
    athena = boto3.client(
        "athena", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(athena) as stubber:
        stubber.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q-2"},
            {
                "QueryString": (
                    "SELECT ts, turn_id, model_id, outcome, error_code, input_tokens, "
                    'output_tokens, cost_usd, door FROM "ai_gateway_dev"."turns" '
                    "WHERE user_id = ? AND dt >= ? ORDER BY ts DESC LIMIT 5"
                ),
                "WorkGroup": "ai-gateway-dev",
                "ExecutionParameters": ["'it''s-me'", "'2026-10-20'"],
            },
        )
        _athena_answer(stubber, "q-2", [["ts", "turn_id"], ["2026-11-24 10:00:00.000", "t-1"]])
        history = AthenaTurnHistory(athena, "ai-gateway-dev", "ai_gateway_dev", clock=lambda: NOW)
        assert history.recent("it's-me", 5) == [{"ts": "2026-11-24 10:00:00.000", "turn_id": "t-1"}]


def test_reset_clears_only_the_window_asked_for_and_audits_before_and_after(stack):
    sub = sub_of(stack)
    bucket = int(NOW) - int(NOW) % 600
    stack["dynamodb"].put_item(
        TableName="usage",
        Item={
            "pk": {"S": f"user#{sub}"},
            "version": {"N": "4"},
            f"d#{bucket}#o": {"N": "70"},
            "m#2099-01#o": {"N": "90"},
        },
    )
    assert cli(stack, "reset", "ana", "--window", "daily", "--yes") == 0
    item = stack["dynamodb"].get_item(TableName="usage", Key={"pk": {"S": f"user#{sub}"}})["Item"]
    assert f"d#{bucket}#o" not in item and "m#2099-01#o" in item
    assert item["version"] == {"N": "5"}
    (line,) = audit_lines()
    assert (line["action"], line["before"]["window"], line["after"]["dailyOutputTokens"]) == (
        "reset",
        "daily",
        0,
    )


def test_a_reset_racing_a_turn_writes_nothing(stack):
    from tools.admin.usage_items import ItemChanged, UsageItems

    sub = sub_of(stack)
    stack["dynamodb"].put_item(
        TableName="usage",
        Item={"pk": {"S": f"user#{sub}"}, "version": {"N": "1"}, "m#2099-01#o": {"N": "9"}},
    )
    items = UsageItems(stack["dynamodb"], "usage")
    seen = items.get(sub)
    # a turn settles between the operator's read and the reset
    stack["dynamodb"].update_item(
        TableName="usage",
        Key={"pk": {"S": f"user#{sub}"}},
        UpdateExpression="ADD #v :one",
        ExpressionAttributeNames={"#v": "version"},
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    with pytest.raises(ItemChanged):
        items.reset(seen, "monthly")
    assert "m#2099-01#o" in items.get(sub).attributes
