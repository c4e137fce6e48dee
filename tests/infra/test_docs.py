"""The deployment docs stay in step with the program they document: every config key and
output is in docs/deploy.md, or, for the hosted chat app, in docs/web-hosting.md."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = (ROOT / "docs" / "deploy.md").read_text() + (ROOT / "docs" / "web-hosting.md").read_text()


def _documented_keys() -> set[str]:
    return set(re.findall(r"^\| `([A-Za-z]+)` \|", DEPLOY, flags=re.MULTILINE))


def test_every_config_key_of_the_schema_is_documented():
    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    keys = {key.split(":", 1)[1] for key in schema if key.startswith("ai-gateway:")}
    assert keys <= _documented_keys(), keys - _documented_keys()


def test_every_exported_output_is_documented(dev):
    for output in dev.outputs:
        assert f"`{output}`" in DEPLOY, output
