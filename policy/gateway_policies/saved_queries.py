"""The operators' saved queries: a stack that runs the gateway declares the Logs Insights queries
and Athena named queries its runbook (``docs/operations.md``) sends operators to."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._props import UNKNOWN, as_list, maybe, of_type

FUNCTION = "aws:lambda/function:Function"
QUERY_DEFINITION = "aws:cloudwatch/queryDefinition:QueryDefinition"
WORKGROUP = "aws:athena/workgroup:Workgroup"
NAMED_QUERY = "aws:athena/namedQuery:NamedQuery"
#: Where Lambda writes a function's logs by default.
FUNCTION_LOG_GROUP_PREFIX = "/aws/lambda/"

LOGS_INSIGHTS_QUERIES = [
    "users-with-most-conversations",
    "unique-users-per-5-minutes",
    "errors-by-code",
    "first-token-latency-by-model",
    "refusals-by-reason-and-tier",
    "top-users-by-tokens",
]
ATHENA_NAMED_QUERIES = [
    "tokens-by-model",
    "top-users-by-tokens",
    "daily-active-users",
    "spend-by-user-model-tier",
    "spend-by-model",
    "spend-by-tier",
    "cache-hit-rate",
]


def _check_definition(definition: PolicyResource, report_violation: ReportViolation) -> None:
    name = maybe(definition.props, "name")
    if maybe(definition.props, "queryString") in (None, ""):
        report_violation(f"Saved query '{name}' has no query string.", definition.urn)
    groups = maybe(definition.props, "logGroupNames")
    if groups is UNKNOWN:
        return  # known after deployment; `pulumi up` checks again
    names = as_list(groups, lenient=True)
    if not names:
        report_violation(
            f"Saved query '{name}' names no log group; scope it to the functions' log groups "
            "(logGroupNames) so it reads the turns and nothing else.",
            definition.urn,
        )
    for group in names:
        if isinstance(group, str) and not group.startswith(FUNCTION_LOG_GROUP_PREFIX):
            report_violation(
                f"Saved query '{name}' reads log group '{group}', not a function's "
                f"({FUNCTION_LOG_GROUP_PREFIX}<name>).",
                definition.urn,
            )


def _logs_insights(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    by_key: dict[str, list[PolicyResource]] = {}
    for definition in of_type(args.resources, QUERY_DEFINITION):
        name = maybe(definition.props, "name")
        if isinstance(name, str):
            by_key.setdefault(name.rsplit("/", 1)[-1], []).append(definition)
    for key in args.get_config().get("logsInsightsQueries") or ():
        found = by_key.get(key, [])
        if not found:
            report_violation(
                f"The stack declares no saved Logs Insights query '{key}' "
                f"(a QueryDefinition named '<project>/<stack>/{key}'); the runbook sends "
                "operators to it (docs/operations.md)."
            )
        for definition in found:
            _check_definition(definition, report_violation)


def _athena(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    queries = of_type(args.resources, NAMED_QUERY)
    names = {maybe(q.props, "name") for q in queries}
    for key in args.get_config().get("athenaNamedQueries") or ():
        if key not in names:
            report_violation(
                f"The stack declares no Athena named query '{key}'; the runbook reads usage and "
                "spend with it (docs/operations.md)."
            )
    for query in queries:
        for prop in ("database", "workgroup", "query"):
            if maybe(query.props, prop) in (None, ""):
                report_violation(
                    f"Athena named query '{maybe(query.props, 'name')}' has no {prop}.", query.urn
                )


def _saved_queries_declared(args: StackValidationArgs, report_violation: ReportViolation):
    # A stack with functions runs turns, so it has logs to query; one with a workgroup has
    # analytics to query. (A stack with neither - a policy fixture - has nothing to save.)
    if of_type(args.resources, FUNCTION):
        _logs_insights(args, report_violation)
    if of_type(args.resources, WORKGROUP):
        _athena(args, report_violation)


saved_queries_declared = StackValidationPolicy(
    name="saved-queries-declared",
    description="A stack with functions declares every saved Logs Insights query of the runbook, "
    "each scoped to function log groups; a stack with an Athena workgroup declares every named "
    "query, each with its database and workgroup.",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "logsInsightsQueries": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Saved Logs Insights queries every stack with functions declares "
                "(the last segment of each query definition's name).",
                "default": LOGS_INSIGHTS_QUERIES,
            },
            "athenaNamedQueries": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Athena named queries every stack with a workgroup declares.",
                "default": ATHENA_NAMED_QUERIES,
            },
        }
    ),
    validate=_saved_queries_declared,
)

POLICIES = [saved_queries_declared]
