"""Lambda SnapStart works only through published versions: whatever invokes a SnapStart function
must name a version or an alias of one, or it runs ``$LATEST`` — cold, from scratch, every time.

"You can use SnapStart only on published function versions and aliases that point to versions.
You can't use SnapStart on a function's unpublished version ($LATEST)."
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html)
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._props import UNKNOWN, depends_on, maybe, of_type

FUNCTION = "aws:lambda/function:Function"
DATA_SOURCE = "aws:appsync/dataSource:DataSource"


def _snapstart(function: PolicyResource) -> bool:
    return maybe(function.props, "snapStart", "applyOn") == "PublishedVersions"


def _invokes_unpublished(source: PolicyResource, function: PolicyResource) -> bool:
    """Whether ``source`` invokes ``function`` by its unqualified ARN (or ``$LATEST``)."""
    if depends_on(source, "lambdaConfig", function):
        return True  # built from the function's own ARN, not an alias's or a version's
    target = maybe(source.props, "lambdaConfig", "functionArn")
    arn = maybe(function.props, "arn")
    if not isinstance(target, str) or target is UNKNOWN or not isinstance(arn, str):
        return False
    return target in (arn, f"{arn}:$LATEST")


def _event_handlers_invoke_snapshots(args: StackValidationArgs, report_violation: ReportViolation):
    functions = [f for f in of_type(args.resources, FUNCTION) if _snapstart(f)]
    for function in functions:
        if maybe(function.props, "publish") is not True:
            report_violation(
                f"Function '{function.name}' has SnapStart on published versions but publishes "
                "none: set publish so each deploy makes the version Lambda snapshots.",
                function.urn,
            )
    for source in of_type(args.resources, DATA_SOURCE):
        for function in functions:
            if _invokes_unpublished(source, function):
                report_violation(
                    f"Data source '{source.name}' invokes SnapStart function '{function.name}' "
                    "unqualified, i.e. $LATEST, which SnapStart never restores: target an alias "
                    "of a published version (aws.lambda_.Alias) instead.",
                    source.urn,
                )


lambda_snapstart_invoked_through_versions = StackValidationPolicy(
    name="lambda-snapstart-invoked-through-versions",
    description="A SnapStart function publishes versions, and the Event API's handler data "
    "sources invoke it through a version or alias, never its unqualified ARN ($LATEST).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_event_handlers_invoke_snapshots,
)

POLICIES = [lambda_snapstart_invoked_through_versions]
