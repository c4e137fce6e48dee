"""Package the web chat for a deployed stack: the UI's files plus a ``config.json`` for that stack.

``pulumi stack output --json | python -m local.webconfig --stack prod --out site/`` writes a
static site to host anywhere (S3 + CloudFront, or ``python -m http.server -d site``). Its config is
the hosted app's (:func:`site_config.config_document`): the stack outputs and ``USER_SRP_AUTH``,
the only password flow a deployed app client allows, and no tier data - the page asks the gateway
for its tier and models, so the site need not change when a tier does.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from local.webui import WEB_ROOT
from site_config import CONFIG_OUTPUTS, config_document

#: Stack outputs the UI needs; other outputs are left out of the public config.
UI_OUTPUTS = CONFIG_OUTPUTS


def web_config(stack: str, outputs: dict[str, Any]) -> dict:
    """``config.json`` for a deployed stack from its outputs."""
    return config_document(outputs, stack=stack)


def write_site(out: Path, config: dict[str, Any]) -> None:
    """Copy the built UI and write its config."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(WEB_ROOT, out, dirs_exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.webconfig", description=__doc__)
    parser.add_argument("--stack", required=True, help="the deployed stack (Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--outputs",
        type=Path,
        help="JSON of `pulumi stack output --json` (default: read it from stdin)",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write the site to")
    args = parser.parse_args(argv)
    raw = args.outputs.read_text() if args.outputs else sys.stdin.read()
    try:
        config = web_config(args.stack, json.loads(raw))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    write_site(args.out, config)
    print(f"wrote the chat UI for stack '{args.stack}' to {args.out}/ (config.json included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
