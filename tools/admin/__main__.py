"""``python -m tools.admin``: administer the gateway's users, tiers, blocks and usage.

Exit status: 0 done, 1 refused (an unknown user, tier or window; a declined reset; unreadable
outputs) with nothing changed, 2 a command line argparse could not read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.tiers import TierConfig

from tools.admin.audit import AuditLog, CloudWatchAuditLog, FileAuditLog
from tools.admin.commands import Admin, AdminError
from tools.admin.directory import Directory, UnknownUser
from tools.admin.tables import table
from tools.admin.target import REPO_ROOT, Target, TargetError, load_target
from tools.admin.turns import RECENT_COLUMNS, AthenaTurnHistory, LocalTurnHistory, TurnHistory
from tools.admin.usage_items import WINDOW_PREFIXES, ItemChanged, UsageItems

USER_COLUMNS = (
    "username",
    "tier",
    "status",
    "todayTokens",
    "monthTokens",
    "todayUsd",
    "monthUsd",
    "sub",
)
TOP_COLUMNS = ("username", "turns", "tokens", "usd", "sub")
WINDOW_COLUMNS = ("window", "used", "allowed")
#: A recent turn as the table shows it: the record's columns but its id.
TURN_COLUMNS = tuple(c for c in RECENT_COLUMNS if c != "turn_id")


def _options(*, top: bool) -> argparse.ArgumentParser:
    """Where and how: accepted before the command and after it (``users --local --json``)."""
    common = argparse.ArgumentParser(add_help=False)
    # After the command, an option left out must not overwrite the one given before it.
    flag: Any = False if top else argparse.SUPPRESS
    value: Any = None if top else argparse.SUPPRESS
    where = common.add_mutually_exclusive_group()
    where.add_argument(
        "--local", action="store_true", default=flag, help="the make dev gateway (the default)"
    )
    where.add_argument(
        "--stack", default=value, help="a deployed stack (reads `pulumi stack output --json`)"
    )
    where.add_argument("--outputs", type=Path, default=value, help="a file of stack outputs (JSON)")
    common.add_argument(
        "--json", action="store_true", default=flag, help="print JSON instead of tables"
    )
    return common


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m tools.admin", description=__doc__, parents=[_options(top=True)]
    )
    commands = cli.add_subparsers(dest="command", required=True)
    after = _options(top=False)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=text, parents=[after])

    users = command("users", "every user, tier, status and usage")
    users.add_argument("--tier")
    usage = command("usage", "one user's windows and recent turns")
    usage.add_argument("user", help="username or sub")
    set_tier = command("set-tier", "move a user to another tier")
    set_tier.add_argument("user")
    set_tier.add_argument("tier")
    for name, text in (("block", "disable and refuse every held token"), ("unblock", "enable")):
        command(name, text).add_argument("user")
    reset = command("reset", "clear a user's usage window")
    reset.add_argument("user")
    reset.add_argument("--window", required=True, choices=sorted(WINDOW_PREFIXES))
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    top = command("top", "the heaviest users")
    top.add_argument("--by", choices=("tokens", "turns"), default="tokens")
    top.add_argument("--days", type=int, default=7)
    top.add_argument("--limit", type=int, default=10)
    return cli


def build(target: Target) -> Admin:
    parameter = target.client("ssm").get_parameter(Name=target.tier_config_parameter)
    tiers = TierConfig.from_document(json.loads(parameter["Parameter"]["Value"]))
    audit: AuditLog
    if target.local:
        audit = FileAuditLog(
            REPO_ROOT / str(target.outputs.get("adminAuditFile") or ".local/admin-audit.jsonl")
        )
    else:
        group = target.output("adminAuditLogGroupName")
        if group is None:
            raise TargetError("the stack outputs lack adminAuditLogGroupName (deploy this version)")
        audit = CloudWatchAuditLog(target.client("logs"), target.client("sts"), group)

    def history() -> TurnHistory:
        if target.local:
            bucket = target.output("analyticsBucketName")
            if bucket is None:
                raise TargetError("the local outputs lack analyticsBucketName")
            return LocalTurnHistory(target.client("s3"), bucket)
        workgroup = target.output("analyticsWorkgroupName")
        database = target.output("analyticsDatabaseName")
        if workgroup is None or database is None:
            raise TargetError("the stack outputs lack the analytics workgroup and database")
        return AthenaTurnHistory(target.client("athena"), workgroup, database)

    return Admin(
        tiers=tiers,
        directory=Directory(target.client("cognito-idp"), target.user_pool_id),
        usage=UsageItems(target.client("dynamodb"), target.usage_table),
        history=history,
        audit=audit,
        user_pool_client_id=target.user_pool_client_id,
        confirm=_ask,
    )


def run(args: argparse.Namespace, admin: Admin) -> Any:
    """The command's result: rows, a document, or a message."""
    match args.command:
        case "users":
            return admin.users(args.tier)
        case "usage":
            return admin.usage_of(args.user)
        case "set-tier":
            return admin.set_tier(args.user, args.tier)
        case "block":
            return admin.block(args.user)
        case "unblock":
            return admin.unblock(args.user)
        case "reset":
            return admin.reset(args.user, args.window, yes=args.yes)
        case "top":
            return admin.top(args.by, args.days, args.limit)
    raise AdminError(f"unknown command {args.command!r}")


def render(command: str, result: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps(result if not isinstance(result, str) else {"message": result}, indent=2)
    if isinstance(result, str):
        return result
    if command == "usage":
        head = f"{result['username']} ({result['sub']}): tier {result['tier']}, {result['status']}"
        return "\n\n".join(
            [
                head,
                table(result["windows"], WINDOW_COLUMNS),
                "Recent turns (analytics records):\n" + table(result["recentTurns"], TURN_COLUMNS),
            ]
        )
    return table(result, TOP_COLUMNS if command == "top" else USER_COLUMNS)


def main(argv: Sequence[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if sum(bool(x) for x in (args.local, args.stack, args.outputs)) > 1:
        cli.error("choose one of --local, --stack and --outputs")
    try:
        target = load_target(local=args.local, outputs_file=args.outputs, stack=args.stack)
        result = run(args, build(target))
    except (AdminError, UnknownUser, TargetError, ItemChanged) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(render(args.command, result, args.json))
    return 0


def _ask(prompt: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(prompt).strip().lower() in ("y", "yes")


if __name__ == "__main__":
    sys.exit(main())
