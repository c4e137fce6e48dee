"""Operator CLI for prepared responses: put, list and delete answers the gateway may serve for a
first prompt instead of calling a model.

    python tools/prepared_responses.py --table <name> put --prompt "What is X?" --response "X is…"
    python tools/prepared_responses.py --table <name> put --prompt "Hi" --response-file hi.md \\
        --model amazon.nova-lite-v1:0 --expires-in-days 30
    python tools/prepared_responses.py --table <name> list [--json]
    python tools/prepared_responses.py --table <name> delete --prompt "What is X?"

``--endpoint-url`` points it at the local gateway's moto (``awsEndpointUrl`` in
``.local/outputs.json``). Prompts are matched after normalisation (Unicode NFKC, case-folded,
whitespace collapsed, trailing punctuation dropped), so "what is X" finds "What is X?".
Warm functions keep an index of the prepared keys and refresh it every ``tierConfigCacheSeconds``
(30 s by default): a new entry is served from then on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from gateway.prepared import ANY_MODEL, PreparedResponseTable


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="prepared_responses", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--table", required=True, help="prepared-responses table name")
    parser.add_argument("--endpoint-url", help="DynamoDB endpoint (the local gateway's moto)")
    parser.add_argument("--region", help="AWS region (default: the environment's)")
    commands = parser.add_subparsers(dest="command", required=True)

    put = commands.add_parser("put", help="store (or replace) the answer to a prompt")
    put.add_argument("--prompt", required=True)
    answer = put.add_mutually_exclusive_group(required=True)
    answer.add_argument("--response", help="the answer text")
    answer.add_argument("--response-file", type=Path, help="a file holding the answer text")
    put.add_argument("--model", default=ANY_MODEL, help="model id it answers for (default: any)")
    expiry = put.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in-days", type=float, help="stop serving it after this long")
    expiry.add_argument("--expires-at", type=int, help="stop serving it at this epoch second")

    listing = commands.add_parser("list", help="list stored answers")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    delete = commands.add_parser("delete", help="delete the answer to a prompt")
    delete.add_argument("--prompt", required=True)
    delete.add_argument("--model", default=ANY_MODEL, help="model id it answers for (default: any)")
    return parser.parse_args(argv)


def open_table(args: argparse.Namespace) -> PreparedResponseTable:
    import boto3

    options: dict[str, Any] = {}
    if args.endpoint_url:
        options["endpoint_url"] = args.endpoint_url
    if args.region:
        options["region_name"] = args.region
    return PreparedResponseTable(boto3.resource("dynamodb", **options).Table(args.table))


def main(argv: list[str] | None = None, table: PreparedResponseTable | None = None) -> int:
    args = parse_args(argv)
    table = table or open_table(args)
    if args.command == "put":
        response = args.response
        if args.response_file is not None:
            response = args.response_file.read_text(encoding="utf-8")
        if not response.strip():
            print("error: the response is empty", file=sys.stderr)
            return 2
        expires_at = args.expires_at
        if args.expires_in_days is not None:
            expires_at = int(time.time() + args.expires_in_days * 86_400)
        entry = table.put(args.prompt, response, scope=args.model, expires_at=expires_at)
        print(f"stored {entry.key}")
        return 0
    if args.command == "list":
        for entry in sorted(table.entries(), key=lambda e: (e.scope, e.prompt)):
            if args.json:
                print(
                    json.dumps(
                        {
                            "key": entry.key,
                            "scope": entry.scope,
                            "prompt": entry.prompt,
                            "response": entry.response,
                            "expiresAt": entry.expires_at,
                        }
                    )
                )
            else:
                expires = entry.expires_at if entry.expires_at is not None else "-"
                print(
                    f"{entry.scope}\t{expires}\t{_preview(entry.prompt)}\t{_preview(entry.response)}"
                )
        return 0
    if table.delete(args.prompt, scope=args.model):
        print("deleted")
        return 0
    print("no prepared response for that prompt", file=sys.stderr)
    return 1


def _preview(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


if __name__ == "__main__":
    raise SystemExit(main())
