"""The Event API: logged, and split so users only ever write to the inbound namespace and only
the gateway writes to the outbound one.

A namespace's auth modes fall back to its API's defaults, so these are stack policies: they
resolve each namespace's effective modes before judging them. The namespaces are recognised by
what users may do on them, not by their configurable names.
"""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._props import USER_AUTH_TYPES, auth_types, get, maybe, of_type, refers_to

API = "aws:appsync/api:Api"
NAMESPACE = "aws:appsync/channelNamespace:ChannelNamespace"


def _appsync_event_api_logging(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != API:
        return
    allowed = list(args.get_config().get("logLevels") or ())
    log_config = get(args.props, "eventConfig", "logConfig")
    level = get(log_config, "logLevel") if log_config else None
    if level not in allowed:
        report_violation(
            f"eventConfig.logConfig.logLevel is {level!r}; set one of {', '.join(allowed)}."
        )
    if log_config and not get(log_config, "cloudwatchLogsRoleArn"):
        report_violation("eventConfig.logConfig needs a cloudwatchLogsRoleArn to write logs.")


appsync_event_api_logging = ResourceValidationPolicy(
    name="appsync-event-api-logging",
    description="AppSync Event APIs log to CloudWatch at an allowed level (never NONE).",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "logLevels": {
                "type": "array",
                "items": {"type": "string", "enum": ["ERROR", "INFO", "DEBUG", "ALL"]},
                "description": "Event API log levels a stack may use.",
                "default": ["ERROR", "INFO", "DEBUG", "ALL"],
            }
        }
    ),
    validate=_appsync_event_api_logging,
)


def _api_of(namespace: PolicyResource, apis: list[PolicyResource]) -> PolicyResource | None:
    for api in apis:
        if refers_to(namespace, "apiId", api, ("apiId", "id")):
            return api
    return apis[0] if len(apis) == 1 else None  # preview: the id is not known yet


def namespace_modes(
    args: StackValidationArgs,
) -> Iterator[tuple[PolicyResource, set[str] | None, set[str] | None]]:
    """``(namespace, publish auth types, subscribe auth types)``, API defaults applied."""
    apis = of_type(args.resources, API)
    for namespace in of_type(args.resources, NAMESPACE):
        api = _api_of(namespace, apis)
        modes = []
        for own, default in (
            ("publishAuthModes", "defaultPublishAuthModes"),
            ("subscribeAuthModes", "defaultSubscribeAuthModes"),
        ):
            resolved = auth_types(maybe(namespace.props, own))
            if not resolved and api is not None:
                resolved = auth_types(maybe(api.props, "eventConfig", default))
            modes.append(resolved)
        yield namespace, modes[0], modes[1]


def _label(modes: set[str] | None) -> str:
    return ", ".join(sorted(modes)) if modes else "unknown"


def _outbound_publish_iam_only(args: StackValidationArgs, report_violation: ReportViolation):
    for namespace, publish, subscribe in namespace_modes(args):
        if publish is None or subscribe is None or not subscribe & USER_AUTH_TYPES:
            continue
        if publish != {"AWS_IAM"}:
            report_violation(
                f"Namespace '{namespace.name}' is subscribed to by users ({_label(subscribe)}) "
                f"but accepts publishes with {_label(publish)}: anyone signed in could inject "
                "events into other users' answers. Set publishAuthModes to AWS_IAM only.",
                namespace.urn,
            )


appsync_outbound_publish_iam_only = StackValidationPolicy(
    name="appsync-outbound-publish-iam-only",
    description="A channel namespace users subscribe to (the outbound one) accepts publishes "
    "only with AWS_IAM, so only the gateway's functions can write answers.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_outbound_publish_iam_only,
)


def _inbound_not_subscribable(args: StackValidationArgs, report_violation: ReportViolation):
    for namespace, publish, subscribe in namespace_modes(args):
        if publish is None or subscribe is None or not publish & USER_AUTH_TYPES:
            continue
        if subscribe & USER_AUTH_TYPES:
            report_violation(
                f"Namespace '{namespace.name}' takes users' chat turns ({_label(publish)}) and "
                f"lets users subscribe ({_label(subscribe)}): prompts must not be readable by "
                "other clients. Set subscribeAuthModes to AWS_IAM only.",
                namespace.urn,
            )


appsync_inbound_not_subscribable = StackValidationPolicy(
    name="appsync-inbound-not-subscribable",
    description="A channel namespace users publish to (the inbound one) cannot be subscribed to "
    "by users, so no client can read another user's prompts.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_inbound_not_subscribable,
)

POLICIES = [
    appsync_event_api_logging,
    appsync_outbound_publish_iam_only,
    appsync_inbound_not_subscribable,
]
