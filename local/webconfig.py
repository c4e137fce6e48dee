"""Package the web chat for a deployed stack: the UI's files plus a ``config.json`` for that stack.

``pulumi stack output --json | python -m local.webconfig --stack prod --out site/`` writes a
static site to host anywhere (S3 + CloudFront, or ``python -m http.server -d site``). The config
carries the stack outputs, the tier document from the same stack file the program deployed (so
the model selector shows the tier's allowlist) and ``USER_SRP_AUTH``, the only password flow a
deployed app client allows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from local.stack import load_stack
from local.webui import web_root

#: Stack outputs the UI needs; other outputs are left out of the public config.
UI_OUTPUTS = (
    "region",
    "userPoolId",
    "userPoolClientId",
    "eventsHttpEndpoint",
    "eventsRealtimeEndpoint",
    "inboundNamespace",
    "outboundNamespace",
)


def web_config(stack: str, outputs: dict[str, Any], config_file: Path | None = None) -> dict:
    """``config.json`` for a deployed stack from its outputs and its stack file."""
    missing = [name for name in UI_OUTPUTS if not outputs.get(name)]
    if missing:
        raise ValueError(f"the stack outputs lack {', '.join(missing)}")
    settings = load_stack(stack, config_file)
    return {
        **{name: outputs[name] for name in UI_OUTPUTS},
        "authFlow": "USER_SRP_AUTH",
        "modelProvider": "bedrock",
        "tierConfig": settings.tier_config.to_document(),
        "environment": "aws",
        "stack": stack,
    }


def write_site(out: Path, config: dict[str, Any]) -> None:
    """Copy the UI's files (the built bundle when there is one) and write its config."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(web_root(), out, dirs_exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.webconfig", description=__doc__)
    parser.add_argument("--stack", required=True, help="the deployed stack (Pulumi.<stack>.yaml)")
    parser.add_argument("--config-file", type=Path, help="stack file, if not Pulumi.<stack>.yaml")
    parser.add_argument(
        "--outputs",
        type=Path,
        help="JSON of `pulumi stack output --json` (default: read it from stdin)",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write the site to")
    args = parser.parse_args(argv)
    raw = args.outputs.read_text() if args.outputs else sys.stdin.read()
    try:
        config = web_config(args.stack, json.loads(raw), args.config_file)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    write_site(args.out, config)
    print(f"wrote the chat UI for stack '{args.stack}' to {args.out}/ (config.json included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
