"""``make policy STACK=...`` (``policy/report.py``): a readable verdict and a CI-usable status."""

from __future__ import annotations

import json

import pytest

from policy import report
from policy.offline import analyze

# Declaring a stack imports pulumi_aws, whose deprecated aliases warn on import.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_report_lists_every_policy_as_passing_for_prod(capsys):
    status = report.main(["--stack", "prod"])
    out = capsys.readouterr().out
    assert status == 0
    assert "stack 'prod'" in out
    assert out.count("  PASS  ") == len(analyze([], stack="prod").policies)
    assert "0 mandatory and 0 advisory violation(s)" in out


def test_report_names_violating_resources_and_fails(tmp_path, capsys):
    config = tmp_path / "narrow.json"
    config.write_text(
        json.dumps({"models-in-catalog": {"approvedModels": ["amazon.nova-pro-v1:0"]}})
    )
    status = report.main(["--stack", "prod", "--config", str(config)])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL  models-in-catalog" in out
    assert "aws:ssm/parameter:Parameter 'ai-gateway-prod-metering-tier-config'" in out
    assert "deployment would be blocked" in out


def test_report_rejects_an_invalid_config_with_status_2(tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"not-a-policy": "mandatory"}))
    assert report.main(["--stack", "dev", "--config", str(config)]) == 2
    assert "not-a-policy" in capsys.readouterr().err
