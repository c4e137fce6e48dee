"""Functions: a supported Python runtime on Graviton, traced, and logging into a log group the
stack owns and expires."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._props import UNKNOWN, as_list, get, maybe, of_type

FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def _lambda_python_runtime(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != FUNCTION:
        return
    allowed = list(args.get_config().get("allowedRuntimes") or ())
    runtime = get(args.props, "runtime")
    if get(args.props, "packageType") == "Image":
        report_violation("Container-image functions are not allowed; package a zip on a runtime.")
    elif runtime not in allowed:
        report_violation(
            f"Runtime {runtime!r} is not an allowed Python runtime ({', '.join(allowed)})."
        )


lambda_python_runtime = ResourceValidationPolicy(
    name="lambda-python-runtime",
    description="Lambda functions run on a supported Python runtime from the allowed list.",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "allowedRuntimes": {
                "type": "array",
                "items": {"type": "string", "pattern": "^python3\\.[0-9]+$"},
                "description": "Lambda runtimes a function may use (AWS-supported Python only).",
                "default": ["python3.12", "python3.13"],
            }
        }
    ),
    validate=_lambda_python_runtime,
)


def _lambda_arm64(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != FUNCTION:
        return
    architectures = as_list(get(args.props, "architectures"))
    if architectures != ["arm64"]:
        found = ", ".join(map(str, architectures)) or "x86_64 (the default)"
        report_violation(f"Set architectures = ['arm64'] (found: {found}).")


lambda_arm64 = ResourceValidationPolicy(
    name="lambda-arm64",
    description="Lambda functions run on arm64 (Graviton): cheaper per GB-second for the same "
    "Python code.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_lambda_arm64,
)


def _lambda_xray_tracing(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != FUNCTION:
        return
    if get(args.props, "tracingConfig", "mode") != "Active":
        report_violation("Set tracingConfig.mode = 'Active' so every turn can be traced.")


lambda_xray_tracing = ResourceValidationPolicy(
    name="lambda-xray-tracing",
    description="Lambda functions have active X-Ray tracing.",
    # Observability, not a security boundary: worth a warning on every preview, not a blocked
    # deployment.
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_lambda_xray_tracing,
)


def _retention_problem(retention: object) -> str | None:
    if retention is UNKNOWN or retention:
        return None
    return "has no retentionInDays, so its logs never expire"


def _log_group_retention(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != LOG_GROUP:
        return
    problem = _retention_problem(get(args.props, "retentionInDays"))
    if problem:
        report_violation(f"Log group {problem}; set retentionInDays.")


log_group_retention = ResourceValidationPolicy(
    name="log-group-retention",
    description="Every CloudWatch log group sets a retention period.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_log_group_retention,
)


def _lambda_log_group(args: StackValidationArgs, report_violation: ReportViolation):
    groups = {maybe(g.props, "name"): g for g in of_type(args.resources, LOG_GROUP)}
    for function in of_type(args.resources, FUNCTION):
        name = maybe(function.props, "name")
        custom = maybe(function.props, "loggingConfig", "logGroup")
        expected = custom or (f"/aws/lambda/{name}" if isinstance(name, str) else UNKNOWN)
        if expected is UNKNOWN or UNKNOWN in groups:
            continue  # names known only after deployment; `pulumi up` checks again
        group = groups.get(expected)
        if group is None:
            report_violation(
                f"Function '{function.name}' logs to '{expected}', which the stack does not "
                "declare; Lambda would create it with no retention. Declare the log group.",
                function.urn,
            )
            continue
        problem = _retention_problem(maybe(group.props, "retentionInDays"))
        if problem:
            report_violation(
                f"Function '{function.name}': its log group '{expected}' {problem}.", group.urn
            )


lambda_log_group = StackValidationPolicy(
    name="lambda-log-group",
    description="Every Lambda function has its log group (/aws/lambda/<name>, or its "
    "loggingConfig.logGroup) declared in the stack with a retention period.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_lambda_log_group,
)

POLICIES = [
    lambda_python_runtime,
    lambda_arm64,
    lambda_xray_tracing,
    log_group_retention,
    lambda_log_group,
]
