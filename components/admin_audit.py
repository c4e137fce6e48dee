"""Where operators' changes are recorded: the log group ``python -m tools.admin`` writes one
structured JSON line to per change (who, what, when, to whom, before and after)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

#: CloudWatch Logs accepts only some retention periods; a year is one of them
#: (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html).
#: The stack passes its ``logRetentionDays``, as for every other log group.
DEFAULT_AUDIT_RETENTION_DAYS = 365


@dataclass
class AdminAuditArgs:
    """Inputs of :class:`AdminAuditComponent`."""

    #: The log group's name, e.g. ``/ai-gateway/ai-gateway-dev/admin-audit``.
    log_group_name: str
    retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS

    def __post_init__(self) -> None:
        if not self.log_group_name.startswith("/"):
            raise ValueError("AdminAuditArgs.log_group_name must start with '/'")
        if self.retention_days < 1:
            raise ValueError("AdminAuditArgs.retention_days must be at least 1")


class AdminAuditComponent(pulumi.ComponentResource):
    """The admin audit log group, with retention. Its lines are encrypted at rest as every log
    group's are ("Log group data is always encrypted in CloudWatch Logs":
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html), like
    the stack's other log groups. The operator's own credentials write it; no function does."""

    log_group: aws.cloudwatch.LogGroup

    def __init__(
        self, name: str, args: AdminAuditArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:index:AdminAudit", name, None, opts)
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=args.log_group_name,
            retention_in_days=args.retention_days,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"logGroupName": self.log_group.name})
