"""Running it: every resource is attributable, production alarms reach a human, and production
traffic passes a web application firewall."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._props import (
    PRODUCTION_ONLY,
    UNKNOWN,
    as_list,
    depends_on,
    effective_tags,
    is_production,
    maybe,
    of_type,
    refers_to,
)

ALARMS = ("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm")
TOPIC = "aws:sns/topic:Topic"
API = "aws:appsync/api:Api"
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"


def _required_tags(args: StackValidationArgs, report_violation: ReportViolation):
    # A stack policy because the provider computes tagsAll (default tags | resource tags): it is
    # in a resource's outputs, not in the inputs a resource policy sees.
    required = list(args.get_config().get("requiredTags") or ())
    for resource in args.resources:
        tags = effective_tags(resource.props, resource.provider)
        if tags is None:
            continue  # not a taggable resource
        missing = [k for k in required if tags.get(k) is not UNKNOWN and not tags.get(k)]
        if missing:
            report_violation(
                f"{resource.resource_type} '{resource.name}' lacks tag(s) {', '.join(missing)}; "
                "set them as the provider's default tags.",
                resource.urn,
            )


required_tags = StackValidationPolicy(
    name="required-tags",
    description="Every taggable resource carries the required tags (tagsAll: provider default "
    "tags and its own), so cost and ownership can be attributed.",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "requiredTags": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Tag keys every taggable resource must carry, with a value.",
                "default": ["project", "environment", "cost-center"],
            }
        }
    ),
    validate=_required_tags,
)


def _production(args: StackValidationArgs) -> list[PolicyResource]:
    """The stack's resources if it is a production stack, else nothing."""
    config = args.get_config()
    return [r for r in args.resources if is_production(r, config)]


def _notifies_a_topic(alarm: PolicyResource, topics: list[PolicyResource]) -> bool:
    if any(depends_on(alarm, "alarmActions", topic) for topic in topics):
        return True
    actions = maybe(alarm.props, "alarmActions")
    if actions is UNKNOWN:
        return True  # known only after deployment; `pulumi up` checks again
    return any(isinstance(a, str) and ":sns:" in a for a in as_list(actions, lenient=True))


def _prod_alarms_notify(args: StackValidationArgs, report_violation: ReportViolation):
    production = _production(args)
    if not production:
        return
    alarms = of_type(production, *ALARMS)
    if not alarms:
        report_violation("A production stack must declare alarms; it declares none.")
    topics = of_type(args.resources, TOPIC)
    for alarm in alarms:
        if not _notifies_a_topic(alarm, topics):
            report_violation(
                f"Alarm '{alarm.name}' has no SNS topic in alarmActions: in production an "
                "alarm must notify someone.",
                alarm.urn,
            )


prod_alarms_notify = StackValidationPolicy(
    name="prod-alarms-notify",
    description="A production stack declares alarms, and every alarm notifies an SNS topic.",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PRODUCTION_ONLY,
    validate=_prod_alarms_notify,
)


def _prod_event_api_waf(args: StackValidationArgs, report_violation: ReportViolation):
    associations = of_type(args.resources, WAF_ASSOCIATION)
    for api in of_type(_production(args), API):
        if not any(refers_to(a, "resourceArn", api, ("apiArn", "arn")) for a in associations):
            report_violation(
                f"Event API '{api.name}' has no WAF web ACL association; production traffic "
                "must pass rate limiting and AWS managed rules.",
                api.urn,
            )


prod_event_api_waf = StackValidationPolicy(
    name="prod-event-api-waf",
    description="In production, every Event API is associated with a WAF web ACL.",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PRODUCTION_ONLY,
    validate=_prod_event_api_waf,
)

POLICIES = [required_tags, prod_alarms_notify, prod_event_api_waf]
