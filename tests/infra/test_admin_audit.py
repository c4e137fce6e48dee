"""AdminAuditComponent: the log group the admin CLI writes its audit lines to, and the outputs
the CLI reads from a deployed stack."""

from __future__ import annotations

import pytest
from infra_support import LOG_GROUP, component

from components.admin_audit import AdminAuditArgs


def test_the_audit_log_group_is_exported_named_for_the_stack_and_kept_for_the_configured_days(
    stack,
):
    (group,) = stack.children_of(component(stack, "AdminAudit").urn)
    assert group.type == LOG_GROUP
    assert group.outputs["name"] == f"/ai-gateway/ai-gateway-{stack.stack}/admin-audit"
    assert group.inputs["retentionInDays"] == stack.config["ai-gateway:logRetentionDays"]
    assert stack.outputs["adminAuditLogGroupName"] == group.outputs["name"]


def test_the_stack_exports_what_the_admin_cli_reads(stack):
    needed = {
        "region",
        "userPoolId",
        "userPoolClientId",
        "usageTableName",
        "tierConfigParameterName",
        "adminAuditLogGroupName",
        "analyticsWorkgroupName",
        "analyticsDatabaseName",
    }
    assert needed <= set(stack.outputs)
    assert stack.outputs["analyticsDatabaseName"] == f"ai_gateway_{stack.stack}"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"log_group_name": "admin-audit"}, "must start with '/'"),
        ({"log_group_name": "/x", "retention_days": 0}, "at least 1"),
    ],
)
def test_bad_audit_args_are_refused_at_construction(fields, message):
    with pytest.raises(ValueError, match=message):
        AdminAuditArgs(**fields)
