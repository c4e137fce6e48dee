"""The mock harness itself: config loading, overrides and independent declarations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.declare import apply_overrides, declare_stack, load_stack_config
from settings import SettingsError

ROOT = Path(__file__).resolve().parents[2]


def test_stack_config_is_the_stack_file_over_the_project_defaults():
    config = load_stack_config("dev")
    assert config["aws:region"] == "us-east-1"
    assert config["ai-gateway:logRetentionDays"] == 7  # from Pulumi.dev.yaml
    assert config["ai-gateway:inboundNamespace"] == "chat"  # default from Pulumi.yaml
    assert set(config["ai-gateway:tiers"]) == {"free", "pro"}


def test_a_missing_stack_file_is_an_error():
    with pytest.raises(FileNotFoundError):
        load_stack_config("no-such-stack")


def test_overrides_set_nested_values_like_config_set_path_and_leave_the_original_alone():
    config = load_stack_config("dev")
    changed = apply_overrides(config, {"tiers.pro.dailyOutputTokens": 1, "ai-gateway:waf": True})
    assert changed["ai-gateway:tiers"]["pro"]["dailyOutputTokens"] == 1
    assert changed["ai-gateway:waf"] is True
    assert config["ai-gateway:tiers"]["pro"]["dailyOutputTokens"] == 400000


def test_a_none_override_removes_the_key():
    assert "ai-gateway:mfa" not in apply_overrides(load_stack_config("dev"), {"mfa": None})


def test_declarations_of_different_stacks_do_not_leak_into_each_other(dev, prod):
    assert all(r.urn.startswith("urn:pulumi:dev::ai-gateway::") for r in dev.resources)
    assert all(r.urn.startswith("urn:pulumi:prod::ai-gateway::") for r in prod.resources)
    assert len(prod.resources) > len(dev.resources)  # WAF, alarm topic, a third tier


def test_the_same_declaration_is_served_from_the_cache():
    assert declare_stack("dev") is declare_stack("dev", {})


def test_a_rejected_config_raises_the_programs_settings_error():
    with pytest.raises(SettingsError, match="ai-gateway:defaultTier"):
        declare_stack("dev", {"defaultTier": "nope"})


def test_command_line_reports_a_rejected_config_as_json():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.declare",
            "--stack",
            "dev",
            "--overrides",
            json.dumps({"logRetentionDays": 8}),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "SettingsError"
    assert error["message"].startswith("ai-gateway:logRetentionDays:")
