"""The CI/CD workflow users copy holds up to its auditors and deploys what ``make`` checks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from policy.offline import DEFAULT_CONFIG_FILE, PACK_DIR

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILE = WORKFLOWS / "ai-gateway.yml"
WORKFLOW = yaml.safe_load(WORKFLOW_FILE.read_text())
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def _zizmor() -> str:
    found = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    if found is None:
        pytest.fail("zizmor is not installed: pip install -r requirements-dev.txt")
    return found


def _steps():
    for job in WORKFLOW["jobs"].values():
        yield from job["steps"]


def test_zizmor_finds_nothing_in_the_workflows():
    run = subprocess.run(
        [_zizmor(), "--offline", "--format", "json", str(WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout) == []


def test_every_action_is_pinned_to_a_commit_with_its_version_named():
    lines = [line.strip() for line in WORKFLOW_FILE.read_text().splitlines()]
    uses = [line.split("uses:", 1)[1].strip() for line in lines if "uses:" in line]
    assert uses
    for use in uses:
        assert PINNED.match(use), use


def test_every_checkout_drops_its_credentials():
    checkouts = [s for s in _steps() if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    assert all(s.get("with", {}).get("persist-credentials") is False for s in checkouts)


def _pulumi_steps():
    return [s for s in _steps() if s.get("uses", "").startswith("pulumi/actions@")]


def test_pulumi_steps_run_the_stacks_the_repository_defines():
    stack_files = {p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml")}
    matrix = WORKFLOW["jobs"]["preview"]["strategy"]["matrix"]["stack"]
    named = set()
    for step in _pulumi_steps():
        stack = step["with"]["stack-name"].rsplit("/", 1)[1]
        named.update(matrix if stack == "${{ matrix.stack }}" else [stack])
    assert named == stack_files


def test_pulumi_steps_enforce_the_pack_and_config_make_policy_checks():
    makefile = (ROOT / "Makefile").read_text()
    assert "policy/report.py --stack $(STACK)" in makefile  # make policy runs the pack in policy/
    for step in _pulumi_steps():
        assert ROOT / step["with"]["policyPacks"] == PACK_DIR
        assert ROOT / step["with"]["policyPackConfigs"] == DEFAULT_CONFIG_FILE


def test_zizmor_is_pinned_in_the_dev_requirements():
    pins = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert any(re.fullmatch(r"zizmor==\d+\.\d+\.\d+", line.strip()) for line in pins)
