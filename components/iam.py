"""IAM documents the components share: trust policies, statements and Bedrock resource ARNs.

Policies are plain JSON built here rather than with ``aws.iam.get_policy_document`` so a stack's
inputs show the exact document (and the policy pack and tests can read it without an invoke).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from gateway.tiers import foundation_model_of, is_inference_profile


def document(*statements: dict[str, Any]) -> str:
    """A policy document with ``statements``, as the JSON string IAM takes."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(sid: str, actions: Iterable[str], resources: Iterable[str]) -> dict[str, Any]:
    """An Allow statement with sorted, de-duplicated actions and resources (stable diffs)."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": sorted(set(resources)),
    }


#: X-Ray accepts no resource narrower than "*" for these: AWS offers no resource-level permission.
XRAY_WRITE_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")


def log_and_trace(log_group_arn: str) -> list[dict[str, Any]]:
    """What every function needs: write to its own log group, and send X-Ray traces."""
    return [
        allow(
            "WriteOwnLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [log_group_arn, f"{log_group_arn}:*"],
        ),
        allow("WriteTraces", XRAY_WRITE_ACTIONS, ["*"]),
    ]


def deny_insecure_transport(bucket_arn: str, *statements: dict[str, Any]) -> str:
    """A bucket policy refusing every request to the bucket that does not use TLS, followed by
    ``statements`` (S3 keeps one policy per bucket, so every grant goes into this one)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                *statements,
            ],
        }
    )


def trust(
    service: str,
    *,
    source_arns: Sequence[str] = (),
    source_account: str | None = None,
    external_id: str | None = None,
) -> str:
    """A role trust policy for an AWS service principal, pinned to the resources (and account)
    that may have the service assume it, so the service cannot be made to act for anyone else's
    resource (the confused deputy:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).

    Each caller passes only the conditions its service documents for role trust: a condition
    key the service does not send makes the role unassumable.
    """
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    condition: dict[str, Any] = {}
    if source_arns:
        arns = sorted(set(source_arns))
        condition["ArnLike"] = {"aws:SourceArn": arns[0] if len(arns) == 1 else arns}
    equals: dict[str, str] = {}
    if source_account:
        equals["aws:SourceAccount"] = source_account
    if external_id:
        equals["sts:ExternalId"] = external_id
    if equals:
        condition["StringEquals"] = equals
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def foundation_model_arns(model_ids: Sequence[str]) -> list[str]:
    """The foundation-model ARNs (in any Region) behind model or inference-profile ids."""
    return sorted(
        {f"arn:aws:bedrock:*::foundation-model/{foundation_model_of(m)}" for m in model_ids}
    )


def bedrock_model_arns(model_ids: Sequence[str], region: str, account: str) -> list[str]:
    """The resource ARNs a model call needs for each allowlisted model id.

    A foundation model is one ARN in the stack's region. A cross-region inference profile
    (``us.…``) needs the profile's ARN in this account and the foundation model's ARN in every
    region the profile may route to, hence ``*`` in the region field of that ARN only.
    """
    arns: set[str] = set()
    for model_id in model_ids:
        if is_inference_profile(model_id):
            arns.add(f"arn:aws:bedrock:{region}:{account}:inference-profile/{model_id}")
            arns.add(f"arn:aws:bedrock:*::foundation-model/{foundation_model_of(model_id)}")
        else:
            arns.add(f"arn:aws:bedrock:{region}::foundation-model/{model_id}")
    return sorted(arns)


def guardrail_arns(guardrail_ids: Sequence[str], region: str, account: str) -> list[str]:
    """ARNs of the Bedrock guardrails with ``guardrail_ids`` in this account and region."""
    return sorted({f"arn:aws:bedrock:{region}:{account}:guardrail/{g}" for g in guardrail_ids})


def alarm_topic_key_policy(account: str) -> str:
    """Key policy of the alarm topic's key: the account administers and uses it (IAM decides
    who in the account may), CloudWatch may encrypt alarm notifications with it. Actions are
    listed one by one rather than as ``kms:*``."""
    root = f"arn:aws:iam::{account}:root"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministersKey",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": [
                        "kms:CancelKeyDeletion",
                        "kms:CreateAlias",
                        "kms:CreateGrant",
                        "kms:Decrypt",
                        "kms:DeleteAlias",
                        "kms:DescribeKey",
                        "kms:DisableKey",
                        "kms:DisableKeyRotation",
                        "kms:EnableKey",
                        "kms:EnableKeyRotation",
                        "kms:Encrypt",
                        "kms:GenerateDataKey",
                        "kms:GetKeyPolicy",
                        "kms:GetKeyRotationStatus",
                        "kms:ListAliases",
                        "kms:ListGrants",
                        "kms:ListResourceTags",
                        "kms:PutKeyPolicy",
                        "kms:RetireGrant",
                        "kms:RevokeGrant",
                        "kms:ScheduleKeyDeletion",
                        "kms:TagResource",
                        "kms:UntagResource",
                        "kms:UpdateAlias",
                        "kms:UpdateKeyDescription",
                    ],
                    # In a key policy "*" means this key and nothing else.
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": "*",
                },
            ],
        }
    )
