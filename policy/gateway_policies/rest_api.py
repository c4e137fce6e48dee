"""The OpenAI-compatible door (an API Gateway REST API): answers stream as the model produces
them, no method is open, every stage is throttled and logged, and production stages sit behind
a WAF web ACL like the Event API.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._props import PRODUCTION_ONLY, get, is_production, maybe, of_type, refers_to

METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"
STAGE = "aws:apigateway/stage:Stage"
METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"

#: A Lambda proxy integration streams only through InvokeWithResponseStream
#: (https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html).
STREAMING_ACTION = "/response-streaming-invocations"


def _integrations_streamed(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != INTEGRATION or get(args.props, "type") != "AWS_PROXY":
        return
    uri = get(args.props, "uri")
    if not isinstance(uri, str) or ":lambda:path/" not in uri:
        return  # not a Lambda proxy integration (or its URI is not known yet)
    mode = get(args.props, "responseTransferMode")
    if mode != "STREAM":
        report_violation(
            f"responseTransferMode is {mode!r}: answers would reach clients only once complete, "
            "and a function behind the Web Adapter in response_stream mode cannot answer a "
            "buffered invoke. Set it to STREAM."
        )
    if not uri.endswith(STREAMING_ACTION):
        report_violation(
            f"The integration invokes its function with {uri.rsplit('/', 1)[-1]!r}; a streamed "
            f"Lambda proxy integration calls '{STREAMING_ACTION.lstrip('/')}'."
        )


apigateway_lambda_integrations_streamed = ResourceValidationPolicy(
    name="apigateway-lambda-integrations-streamed",
    description="Every REST API Lambda proxy integration (the OpenAI door's chat completions "
    "and models) streams: responseTransferMode STREAM through response-streaming-invocations, "
    "so clients see text as the model produces it.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_integrations_streamed,
)


def _methods_authorized(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != METHOD:
        return
    authorization = get(args.props, "authorization")
    if authorization in (None, "NONE"):
        report_violation(
            f"Method {get(args.props, 'httpMethod')!r} has authorization {authorization!r}: "
            "anyone could call it. Use COGNITO_USER_POOLS (or AWS_IAM/CUSTOM)."
        )
    elif authorization in ("COGNITO_USER_POOLS", "CUSTOM") and not get(args.props, "authorizerId"):
        report_violation(f"Method authorization {authorization} needs an authorizerId.")


apigateway_methods_authorized = ResourceValidationPolicy(
    name="apigateway-methods-authorized",
    description="Every REST API method is authorised (never NONE), so API Gateway authenticates "
    "each request before any function code runs.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_methods_authorized,
)


def _settings_of(stage: PolicyResource, settings: list[PolicyResource]) -> list[PolicyResource]:
    return [
        s
        for s in settings
        if maybe(s.props, "methodPath") == "*/*"
        and refers_to(s, "stageName", stage, ("stageName",))
        and maybe(s.props, "restApi") == maybe(stage.props, "restApi")
    ]


def _stage_throttled_and_logged(args: StackValidationArgs, report_violation: ReportViolation):
    settings = of_type(args.resources, METHOD_SETTINGS)
    for stage in of_type(args.resources, STAGE):
        logs = maybe(stage.props, "accessLogSettings")
        if not maybe(logs, "destinationArn") or not maybe(logs, "format"):
            report_violation(
                f"Stage '{stage.name}' writes no access logs; set accessLogSettings "
                "(destinationArn and format).",
                stage.urn,
            )
        throttled = False
        for candidate in _settings_of(stage, settings):
            rate = maybe(candidate.props, "settings", "throttlingRateLimit")
            burst = maybe(candidate.props, "settings", "throttlingBurstLimit")
            if (
                isinstance(rate, int | float)
                and rate > 0
                and isinstance(burst, int | float)
                and burst > 0
            ):
                throttled = True
        if not throttled:
            report_violation(
                f"Stage '{stage.name}' has no stage-wide throttle; declare MethodSettings for "
                "'*/*' with throttlingRateLimit and throttlingBurstLimit above 0.",
                stage.urn,
            )


apigateway_stage_throttled_and_logged = StackValidationPolicy(
    name="apigateway-stage-throttled-and-logged",
    description="Every REST API stage writes access logs and has a stage-wide throttle "
    "(MethodSettings '*/*' with a rate and burst limit).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_stage_throttled_and_logged,
)


def _prod_rest_api_waf(args: StackValidationArgs, report_violation: ReportViolation):
    config = args.get_config()
    associations = of_type(args.resources, WAF_ASSOCIATION)
    for stage in of_type(args.resources, STAGE):
        if not is_production(stage, config):
            continue
        if not any(refers_to(a, "resourceArn", stage, ("arn",)) for a in associations):
            report_violation(
                f"REST API stage '{stage.name}' has no WAF web ACL association; production "
                "traffic must pass the same rate limit and managed rules as the Event API's.",
                stage.urn,
            )


prod_rest_api_waf = StackValidationPolicy(
    name="prod-rest-api-waf",
    description="In production, every REST API stage is associated with a WAF web ACL.",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PRODUCTION_ONLY,
    validate=_prod_rest_api_waf,
)

POLICIES = [
    apigateway_lambda_integrations_streamed,
    apigateway_methods_authorized,
    apigateway_stage_throttled_and_logged,
    prod_rest_api_waf,
]
