"""Read a Pulumi stack file into :class:`settings.Settings`, as ``pulumi up`` would.

The local runtime goes through :func:`settings.load_settings` so it accepts, rejects and defaults
exactly what the Pulumi program does; nothing about tiers or namespaces is restated here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from settings import PROJECT, Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent


def stack_file(stack: str) -> Path:
    """``Pulumi.<stack>.yaml`` at the repository root."""
    return REPO_ROOT / f"Pulumi.{stack}.yaml"


def load_stack(stack: str, config_file: Path | None = None) -> Settings:
    """Validated settings of ``stack`` from its stack file (or from ``config_file``)."""
    path = config_file or stack_file(stack)
    if not path.is_file():
        raise FileNotFoundError(f"stack file {path} not found")
    config: dict[str, Any] = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    region = config.get("aws:region") or "us-east-1"

    def get(key: str) -> Any:
        return config.get(f"{PROJECT}:{key}")

    return load_settings(stack, region, get)
