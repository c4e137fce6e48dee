"""The README and docs/policy.md list every policy with its real enforcement level."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from policy.offline import analyze

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `(?P<name>[a-z0-9-]+)` \| (?P<level>[a-z]+) \| (?P<kind>[a-z]+) \|", re.M)


@pytest.mark.parametrize("doc", ["README.md", "docs/policy.md"])
def test_policy_table_lists_every_policy_with_its_level_and_kind(doc):
    documented = {
        m["name"]: (m["level"], m["kind"]) for m in ROW.finditer((ROOT / doc).read_text())
    }
    pack = {p.name: (p.enforcement_level, p.kind) for p in analyze([], stack="docs").policies}
    assert documented == pack
