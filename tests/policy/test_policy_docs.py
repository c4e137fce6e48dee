"""docs/policy.md (merged into the README) lists every policy with its real enforcement level."""

from __future__ import annotations

import re
from pathlib import Path

from policy.offline import analyze

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
ROW = re.compile(r"^\| `(?P<name>[a-z0-9-]+)` \| (?P<level>[a-z]+) \| (?P<kind>[a-z]+) \|", re.M)


def test_policy_table_lists_every_policy_with_its_level_and_kind():
    documented = {m["name"]: (m["level"], m["kind"]) for m in ROW.finditer(DOC.read_text())}
    pack = {p.name: (p.enforcement_level, p.kind) for p in analyze([], stack="docs").policies}
    assert documented == pack
