"""The hosted chat app's CloudFront distributions: private S3 origins, HTTPS with modern TLS,
security headers on every response, and access logs in production."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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

from ._props import (
    PRODUCTION_ONLY,
    UNKNOWN,
    as_list,
    depends_on,
    get,
    is_production,
    maybe,
    of_type,
    refers_to,
)

DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
HEADERS_POLICY = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
LOG_SOURCE = "aws:cloudwatch/logDeliverySource:LogDeliverySource"
LOG_DELIVERY = "aws:cloudwatch/logDelivery:LogDelivery"

# bucket.s3.amazonaws.com, bucket.s3.<region>.amazonaws.com, bucket.s3-<region>.amazonaws.com
_S3_REST = re.compile(r"\.s3[.-]([a-z0-9-]+\.)?amazonaws\.com(\.cn)?$")
# bucket.s3-website-<region>.amazonaws.com / bucket.s3-website.<region>.amazonaws.com
_S3_WEBSITE = re.compile(r"\.s3-website[.-]")
_HTTPS_VIEWERS = ("redirect-to-https", "https-only")


def _s3_origin_access_control(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != DISTRIBUTION:
        return
    for origin in as_list(get(args.props, "origins")):
        origin_id = get(origin, "originId")
        domain = maybe(origin, "domainName")
        if isinstance(domain, str) and _S3_WEBSITE.search(domain):
            report_violation(
                f"Origin '{origin_id}' is an S3 website endpoint: it serves the bucket publicly "
                "over plain HTTP. Use the bucket's REST endpoint with origin access control."
            )
            continue
        if get(origin, "s3OriginConfig", "originAccessIdentity"):
            report_violation(
                f"Origin '{origin_id}' uses a legacy origin access identity; use origin access "
                "control (SigV4) instead."
            )
        custom = get(origin, "customOriginConfig") is not None
        is_s3 = _S3_REST.search(domain) if isinstance(domain, str) else not custom
        if is_s3 and not get(origin, "originAccessControlId"):
            report_violation(
                f"S3 origin '{origin_id}' has no originAccessControlId: CloudFront could only "
                "read a public bucket. Attach an origin access control."
            )


cloudfront_s3_origin_access_control = ResourceValidationPolicy(
    name="cloudfront-s3-origin-access-control",
    description="CloudFront reaches S3 origins only through origin access control: no legacy "
    "origin access identity, no public S3 website endpoint.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_s3_origin_access_control,
)


def _viewer_https(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != DISTRIBUTION:
        return
    behaviours = [("default", get(args.props, "defaultCacheBehavior", default={}))]
    for behaviour in as_list(get(args.props, "orderedCacheBehaviors")):
        behaviours.append((str(get(behaviour, "pathPattern")), behaviour))
    for label, behaviour in behaviours:
        policy = get(behaviour, "viewerProtocolPolicy")
        if policy not in _HTTPS_VIEWERS:
            report_violation(
                f"Cache behaviour '{label}' lets viewers in with {policy!r}; set "
                "viewerProtocolPolicy to 'redirect-to-https' or 'https-only'."
            )


cloudfront_viewer_https = ResourceValidationPolicy(
    name="cloudfront-viewer-https",
    description="Every cache behaviour of a distribution redirects viewers to HTTPS or accepts "
    "HTTPS only.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_viewer_https,
)


def _minimum_tls(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != DISTRIBUTION:
        return
    certificate = get(args.props, "viewerCertificate", default={})
    if not (get(certificate, "acmCertificateArn") or get(certificate, "iamCertificateId")):
        return  # the default *.cloudfront.net certificate: CloudFront fixes the policy itself
    allowed = list(args.get_config().get("allowedSecurityPolicies") or ())
    version = get(certificate, "minimumProtocolVersion")
    if version not in allowed:
        report_violation(
            f"viewerCertificate.minimumProtocolVersion is {version!r}; with a custom certificate "
            f"use one of {', '.join(allowed)} (TLS 1.2 or later)."
        )


cloudfront_minimum_tls = ResourceValidationPolicy(
    name="cloudfront-minimum-tls",
    description="A distribution with its own certificate uses a security policy of TLS 1.2 or "
    "later (with the default certificate CloudFront sets the policy itself).",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "allowedSecurityPolicies": {
                "type": "array",
                "items": {"type": "string"},
                "description": "CloudFront security policies (minimumProtocolVersion) a custom "
                "certificate may use.",
                # https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/secure-connections-supported-viewer-protocols-ciphers.html
                "default": ["TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"],
            }
        }
    ),
    validate=_minimum_tls,
)


def _headers_policy_of(
    distribution: PolicyResource, policies: list[PolicyResource]
) -> PolicyResource | None:
    policy_id = maybe(distribution.props, "defaultCacheBehavior", "responseHeadersPolicyId")
    for policy in policies:
        if maybe(policy.props, "id") == policy_id or depends_on(
            distribution, "defaultCacheBehavior", policy
        ):
            return policy
    return policies[0] if len(policies) == 1 else None


def _security_header_gaps(headers: Mapping[str, Any], minimum_hsts: int) -> list[str]:
    gaps = []
    max_age = maybe(headers, "strictTransportSecurity", "accessControlMaxAgeSec")
    if max_age is not UNKNOWN and (not isinstance(max_age, int | float) or max_age < minimum_hsts):
        gaps.append(f"Strict-Transport-Security with max-age of at least {minimum_hsts}")
    if maybe(headers, "contentTypeOptions") is None:
        gaps.append("X-Content-Type-Options (nosniff)")
    if maybe(headers, "frameOptions", "frameOption") != "DENY":
        gaps.append("X-Frame-Options DENY")
    csp = maybe(headers, "contentSecurityPolicy", "contentSecurityPolicy")
    if csp is not UNKNOWN and "frame-ancestors 'none'" not in str(csp or ""):
        gaps.append("a Content-Security-Policy with frame-ancestors 'none'")
    return gaps


def _response_headers(args: StackValidationArgs, report_violation: ReportViolation):
    minimum_hsts = int(args.get_config().get("minimumHstsSeconds") or 0)
    policies = of_type(args.resources, HEADERS_POLICY)
    for distribution in of_type(args.resources, DISTRIBUTION):
        if not maybe(distribution.props, "defaultCacheBehavior", "responseHeadersPolicyId"):
            report_violation(
                f"Distribution '{distribution.name}' sends no security headers: attach a "
                "response headers policy to its default cache behaviour.",
                distribution.urn,
            )
            continue
        policy = _headers_policy_of(distribution, policies)
        if policy is None:
            continue  # a policy declared elsewhere (a managed one, another stack's)
        headers = maybe(policy.props, "securityHeadersConfig", default={})
        gaps = _security_header_gaps(headers if isinstance(headers, Mapping) else {}, minimum_hsts)
        if gaps:
            report_violation(
                f"Response headers policy '{policy.name}' of distribution '{distribution.name}' "
                f"lacks {'; '.join(gaps)}.",
                policy.urn,
            )


cloudfront_response_headers = StackValidationPolicy(
    name="cloudfront-response-headers",
    description="A distribution's default cache behaviour has a response headers policy, and the "
    "stack's policy sets HSTS, nosniff, X-Frame-Options DENY and a CSP that forbids framing.",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "minimumHstsSeconds": {
                "type": "integer",
                "description": "Shortest Strict-Transport-Security max-age allowed (seconds).",
                "default": 31_536_000,
            }
        }
    ),
    validate=_response_headers,
)


def _logged(distribution: PolicyResource, args: StackValidationArgs) -> bool:
    if maybe(distribution.props, "loggingConfig", "bucket"):
        return True  # standard logging (legacy)
    sources = [
        s
        for s in of_type(args.resources, LOG_SOURCE)
        if maybe(s.props, "logType") == "ACCESS_LOGS"
        and refers_to(s, "resourceArn", distribution, ("arn",))
    ]
    deliveries = of_type(args.resources, LOG_DELIVERY)
    return any(
        refers_to(delivery, "deliverySourceName", source, ("name",))
        for source in sources
        for delivery in deliveries
    )


def _prod_access_logs(args: StackValidationArgs, report_violation: ReportViolation):
    config = args.get_config()
    for distribution in of_type(args.resources, DISTRIBUTION):
        if is_production(distribution, config) and not _logged(distribution, args):
            report_violation(
                f"Production distribution '{distribution.name}' keeps no access logs: declare "
                "standard logging (an ACCESS_LOGS log delivery source and a delivery), or set "
                "loggingConfig.",
                distribution.urn,
            )


prod_cloudfront_access_logs = StackValidationPolicy(
    name="prod-cloudfront-access-logs",
    description="In production, every CloudFront distribution delivers its access logs "
    "(standard logging v2 delivery, or legacy loggingConfig).",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PRODUCTION_ONLY,
    validate=_prod_access_logs,
)

POLICIES = [
    cloudfront_s3_origin_access_control,
    cloudfront_viewer_https,
    cloudfront_minimum_tls,
    cloudfront_response_headers,
    prod_cloudfront_access_logs,
]
